/* The Engine type: a planned model (ops over one arena) that runs with the GIL released.
 *
 *   Engine(variant, threads, arena_size, constants, ops)
 *     constants: sequence of bytes-like (weights, biases, tables), copied into one 64-byte-aligned block
 *     ops: sequence of (kind, items, params: bytes of int32, tensors, scratch_size)
 *          tensors: sequence of (source, offset, nbytes); source -1 is the arena, k >= 0 is constants[k]
 *   engine.invoke()            run every op in order
 *   memoryview(engine)         the arena, writable: inputs are written and outputs read through it
 *
 * Everything is checked here, before anything runs: each tensor range lies inside its block, the kind has a
 * kernel in the chosen variant, and the kind's check function accepts the params and sizes. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "variants.h"

#define EV_ALIGN 64

typedef struct {
    PyObject_HEAD
    ev_kernels k;
    int n_ops;
    ev_op *ops;
    int32_t **params;
    uint8_t *arena;
    size_t arena_size;
    uint8_t *consts;
    uint8_t *scratch;
    uint8_t **packed;
    ev_pool pool;
    int pool_ready;
    int running; /* guards against invoke() from two Python threads at once */
    Py_ssize_t exports;
} Engine;

static size_t align_up(size_t n) { return (n + EV_ALIGN - 1) / EV_ALIGN * EV_ALIGN; }

static void *aligned_zalloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, EV_ALIGN, n ? align_up(n) : EV_ALIGN) != 0) return NULL;
    memset(p, 0, n ? align_up(n) : EV_ALIGN);
    return p;
}

static int engine_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (msg) {
        PyErr_SetObject(PyExc_ValueError, msg);
        Py_DECREF(msg);
    }
    return -1;
}

static int engine_init(Engine *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"variant", "threads", "arena_size", "constants", "ops", NULL};
    const char *variant;
    int threads;
    Py_ssize_t arena_size;
    PyObject *constants, *ops;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sinOO", kwlist, &variant, &threads, &arena_size, &constants, &ops))
        return -1;
    if (self->ops) return engine_fail("an Engine is initialised once");
    if (ev_variant_table(variant, &self->k) != 0) return engine_fail("no kernel variant '%s' in this build", variant);
    if (ev_cpu_supports(variant) != 1) return engine_fail("this CPU cannot run kernel variant '%s'", variant);
    if (threads < 1 || threads > 64) return engine_fail("threads must be 1..64, got %d", threads);
    if (arena_size < 0) return engine_fail("arena_size must be >= 0");

    /* constants: one aligned block, each constant at an aligned offset */
    PyObject *cseq = PySequence_Fast(constants, "constants must be a sequence of bytes-like objects");
    if (!cseq) return -1;
    Py_ssize_t nc = PySequence_Fast_GET_SIZE(cseq);
    size_t *coff = calloc((size_t)nc + 1, sizeof(size_t)), *clen = calloc((size_t)nc + 1, sizeof(size_t));
    int rc = -1;
    PyObject *oseq = NULL;
    if (!coff || !clen) {
        PyErr_NoMemory();
        goto out;
    }
    size_t total = 0;
    for (Py_ssize_t i = 0; i < nc; i++) {
        Py_buffer b;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(cseq, i), &b, PyBUF_SIMPLE) < 0) goto out;
        coff[i] = total;
        clen[i] = (size_t)b.len;
        total += align_up((size_t)b.len);
        PyBuffer_Release(&b);
    }
    self->consts = aligned_zalloc(total);
    self->arena = aligned_zalloc((size_t)arena_size);
    self->arena_size = (size_t)arena_size;
    if (!self->consts || !self->arena) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < nc; i++) {
        Py_buffer b;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(cseq, i), &b, PyBUF_SIMPLE) < 0) goto out;
        if ((size_t)b.len != clen[i]) { /* changed under us */
            PyBuffer_Release(&b);
            engine_fail("constant %zd changed size while the engine was built", i);
            goto out;
        }
        memcpy(self->consts + coff[i], b.buf, (size_t)b.len);
        PyBuffer_Release(&b);
    }

    oseq = PySequence_Fast(ops, "ops must be a sequence of (kind, items, params, tensors, scratch_size)");
    if (!oseq) goto out;
    Py_ssize_t no = PySequence_Fast_GET_SIZE(oseq);
    self->ops = calloc((size_t)no + 1, sizeof(ev_op));
    self->params = calloc((size_t)no + 1, sizeof(int32_t *));
    self->packed = calloc((size_t)no + 1, sizeof(uint8_t *));
    if (!self->ops || !self->params || !self->packed) {
        PyErr_NoMemory();
        goto out;
    }
    size_t scratch_max = 0;
    for (Py_ssize_t i = 0; i < no; i++) {
        int kind, items;
        Py_buffer pb;
        PyObject *tensors;
        Py_ssize_t scratch_size;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(oseq, i), "iiy*On", &kind, &items, &pb, &tensors,
                              &scratch_size)) {
            goto out;
        }
        ev_op *op = &self->ops[i];
        self->n_ops = (int)i + 1;
        op->kind = kind;
        op->items = items;
        if (pb.len % 4) {
            PyBuffer_Release(&pb);
            engine_fail("op %zd: params must be int32s, got %zd bytes", i, pb.len);
            goto out;
        }
        self->params[i] = malloc(pb.len ? (size_t)pb.len : 4);
        if (!self->params[i]) {
            PyBuffer_Release(&pb);
            PyErr_NoMemory();
            goto out;
        }
        memcpy(self->params[i], pb.buf, (size_t)pb.len);
        op->params = self->params[i];
        op->n_params = (int)(pb.len / 4);
        PyBuffer_Release(&pb);
        if (kind < 0 || kind >= EV_OP_COUNT) {
            engine_fail("op %zd: unknown kind %d", i, kind);
            goto out;
        }
        if (items < 0 || scratch_size < 0) {
            engine_fail("op %zd (%s): negative items or scratch size", i, ev_op_name(kind));
            goto out;
        }
        PyObject *tseq = PySequence_Fast(tensors, "tensors must be a sequence of (source, offset, nbytes)");
        if (!tseq) goto out;
        Py_ssize_t nt = PySequence_Fast_GET_SIZE(tseq);
        if (nt > EV_MAX_OP_TENSORS) {
            Py_DECREF(tseq);
            engine_fail("op %zd (%s): %zd tensors, at most %d", i, ev_op_name(kind), nt, EV_MAX_OP_TENSORS);
            goto out;
        }
        op->n_tensors = (int)nt;
        for (Py_ssize_t j = 0; j < nt; j++) {
            Py_ssize_t source, offset, nbytes;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(tseq, j), "nnn", &source, &offset, &nbytes)) {
                Py_DECREF(tseq);
                goto out;
            }
            uint8_t *base;
            size_t limit;
            if (source == -1) {
                base = self->arena;
                limit = self->arena_size;
            } else if (source >= 0 && source < nc) {
                base = self->consts + coff[source];
                limit = clen[source];
            } else {
                Py_DECREF(tseq);
                engine_fail("op %zd (%s) tensor %zd: source %zd is neither the arena (-1) nor one of %zd constants", i,
                            ev_op_name(kind), j, source, nc);
                goto out;
            }
            if (offset < 0 || nbytes < 0 || (size_t)offset > limit || (size_t)nbytes > limit - (size_t)offset) {
                Py_DECREF(tseq);
                engine_fail("op %zd (%s) tensor %zd: bytes [%zd, %zd) outside its %zu-byte block", i,
                            ev_op_name(kind), j, offset, offset + nbytes, limit);
                goto out;
            }
            op->tensors[j] = base + offset;
            op->sizes[j] = (size_t)nbytes;
        }
        Py_DECREF(tseq);
        op->scratch_size = align_up((size_t)scratch_size);
        if (op->scratch_size > scratch_max) scratch_max = op->scratch_size;
        if (!self->k.ops[kind].run) {
            engine_fail("op %zd: no %s kernel in this build (variant %s)", i, ev_op_name(kind), self->k.name);
            goto out;
        }
        ev_check_fn check = ev_check_for(kind);
        char err[256] = "";
        if (!check) {
            engine_fail("op %zd: no check for %s in this build", i, ev_op_name(kind));
            goto out;
        }
        if (check(op, err, sizeof err) != 0) {
            engine_fail("op %zd (%s): %s", i, ev_op_name(kind), err[0] ? err : "invalid parameters");
            goto out;
        }
        const ev_op_impl *impl = &self->k.ops[kind];
        if (impl->sizes) {
            size_t packed_bytes = 0, scratch_bytes = 0;
            impl->sizes(op, &packed_bytes, &scratch_bytes);
            if (align_up(scratch_bytes) > op->scratch_size) op->scratch_size = align_up(scratch_bytes);
            if (op->scratch_size > scratch_max) scratch_max = op->scratch_size;
            if (packed_bytes) {
                self->packed[i] = aligned_zalloc(packed_bytes);
                if (!self->packed[i]) {
                    PyErr_NoMemory();
                    goto out;
                }
                op->packed = self->packed[i];
                if (impl->pack) impl->pack(op, op->packed);
            }
        }
    }
    if (scratch_max) {
        self->scratch = aligned_zalloc(scratch_max * (size_t)threads);
        if (!self->scratch) {
            PyErr_NoMemory();
            goto out;
        }
    }
    for (int i = 0; i < self->n_ops; i++) self->ops[i].scratch = self->scratch;
    if (ev_pool_init(&self->pool, threads) != 0) {
        self->pool_ready = 1;
        PyErr_SetString(PyExc_OSError, "could not start the engine's worker threads");
        goto out;
    }
    self->pool_ready = 1;
    rc = 0;
out:
    Py_DECREF(cseq);
    Py_XDECREF(oseq);
    free(coff);
    free(clen);
    return rc;
}

static void engine_free_all(Engine *self) {
    if (self->pool_ready) ev_pool_destroy(&self->pool);
    self->pool_ready = 0;
    if (self->params)
        for (int i = 0; i < self->n_ops; i++) free(self->params[i]);
    if (self->packed)
        for (int i = 0; i < self->n_ops; i++) free(self->packed[i]);
    free(self->params);
    free(self->packed);
    self->packed = NULL;
    free(self->ops);
    free(self->arena);
    free(self->consts);
    free(self->scratch);
    self->params = NULL;
    self->ops = NULL;
    self->arena = self->consts = self->scratch = NULL;
}

static void engine_dealloc(Engine *self) {
    engine_free_all(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *engine_invoke(Engine *self, PyObject *unused) {
    if (!self->ops) return PyErr_Format(PyExc_RuntimeError, "the Engine was not initialised");
    if (self->running) return PyErr_Format(PyExc_RuntimeError, "Engine.invoke() is already running in another thread");
    self->running = 1;
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < self->n_ops; i++) {
        const ev_op *op = &self->ops[i];
        ev_pool_run(&self->pool, op, self->k.ops[op->kind].run);
    }
    Py_END_ALLOW_THREADS
    self->running = 0;
    Py_RETURN_NONE;
}

static PyObject *engine_kernels(Engine *self, void *closure) {
    PyObject *l = PyList_New(self->n_ops);
    if (!l) return NULL;
    for (int i = 0; i < self->n_ops; i++)
        PyList_SET_ITEM(l, i, PyUnicode_FromString(self->k.ops[self->ops[i].kind].name));
    return l;
}

static PyObject *engine_variant(Engine *self, void *closure) { return PyUnicode_FromString(self->k.name); }
static PyObject *engine_threads(Engine *self, void *closure) { return PyLong_FromLong(self->pool.threads); }

static int engine_getbuffer(Engine *self, Py_buffer *view, int flags) {
    if (!self->arena) {
        PyErr_SetString(PyExc_BufferError, "the Engine was not initialised");
        return -1;
    }
    int r = PyBuffer_FillInfo(view, (PyObject *)self, self->arena, (Py_ssize_t)self->arena_size, 0, flags);
    if (r == 0) self->exports++;
    return r;
}

static void engine_releasebuffer(Engine *self, Py_buffer *view) { self->exports--; }

static PyBufferProcs engine_as_buffer = {(getbufferproc)engine_getbuffer, (releasebufferproc)engine_releasebuffer};

static PyMethodDef engine_methods[] = {
    {"invoke", (PyCFunction)engine_invoke, METH_NOARGS, "Run every op in order (the GIL is released)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef engine_getset[] = {
    {"kernels", (getter)engine_kernels, NULL, "The C function that runs each op, in order.", NULL},
    {"variant", (getter)engine_variant, NULL, "The kernel variant this engine runs.", NULL},
    {"threads", (getter)engine_threads, NULL, "Threads each op is split across.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject ev_EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "edgevision._native.Engine",
    .tp_basicsize = sizeof(Engine),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A planned model over one arena; see engine.c.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)engine_init,
    .tp_dealloc = (destructor)engine_dealloc,
    .tp_methods = engine_methods,
    .tp_getset = engine_getset,
    .tp_as_buffer = &engine_as_buffer,
};
