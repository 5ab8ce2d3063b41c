/* The Engine type: edgevision._native.Engine, a planned model (ops over one arena) that runs with the GIL
 * released. The work is engine_core.c's; this file converts Python arguments and errors.
 *
 *   Engine(variant, threads, arena_size, constants, ops)
 *     constants: sequence of bytes-like (weights, biases, tables), copied into one 64-byte-aligned block
 *     ops: sequence of (kind, items, params: bytes of int32, tensors, scratch_size)
 *          tensors: sequence of (source, offset, nbytes); source -1 is the arena, k >= 0 is constants[k]
 *   engine.invoke()            run every op in order
 *   memoryview(engine)         the arena, writable: inputs are written and outputs read through it
 *
 * Everything is checked before anything runs (see engine_core.h); a problem is a ValueError naming the op. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "engine_core.h"

typedef struct {
    PyObject_HEAD
    ev_engine e;
    int ready;
    int running; /* guards against invoke() from two Python threads at once */
    Py_ssize_t exports;
} Engine;

static int add_ops(Engine *self, PyObject *ops, char *err, size_t errlen) {
    PyObject *oseq = PySequence_Fast(ops, "ops must be a sequence of (kind, items, params, tensors, scratch_size)");
    if (!oseq) return -1;
    int rc = -1;
    Py_ssize_t no = PySequence_Fast_GET_SIZE(oseq);
    for (Py_ssize_t i = 0; i < no; i++) {
        int kind, items;
        Py_buffer pb;
        PyObject *tensors;
        Py_ssize_t scratch_size;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(oseq, i), "iiy*On", &kind, &items, &pb, &tensors, &scratch_size))
            goto out;
        if (pb.len % 4 || scratch_size < 0) {
            PyErr_Format(PyExc_ValueError, "op %zd: params must be int32s (got %zd bytes) and scratch >= 0", i, pb.len);
            PyBuffer_Release(&pb);
            goto out;
        }
        PyObject *tseq = PySequence_Fast(tensors, "tensors must be a sequence of (source, offset, nbytes)");
        if (!tseq) {
            PyBuffer_Release(&pb);
            goto out;
        }
        Py_ssize_t nt = PySequence_Fast_GET_SIZE(tseq);
        ev_tensor_ref refs[EV_MAX_OP_TENSORS];
        int ok = nt <= EV_MAX_OP_TENSORS;
        for (Py_ssize_t j = 0; ok && j < nt; j++) {
            long long s, o, n;
            ok = PyArg_ParseTuple(PySequence_Fast_GET_ITEM(tseq, j), "LLL", &s, &o, &n);
            refs[j].source = s;
            refs[j].offset = o;
            refs[j].nbytes = n;
        }
        Py_DECREF(tseq);
        if (!ok) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "op %zd: %zd tensors, at most %d", i, nt, EV_MAX_OP_TENSORS);
            PyBuffer_Release(&pb);
            goto out;
        }
        int r = ev_engine_add_op(&self->e, kind, items, (const int32_t *)pb.buf, (int)(pb.len / 4), (int)nt, refs,
                                 (size_t)scratch_size, err, errlen);
        PyBuffer_Release(&pb);
        if (r != 0) {
            PyErr_SetString(PyExc_ValueError, err);
            goto out;
        }
    }
    rc = 0;
out:
    Py_DECREF(oseq);
    return rc;
}

static int engine_init(Engine *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"variant", "threads", "arena_size", "constants", "ops", NULL};
    const char *variant;
    int threads;
    Py_ssize_t arena_size;
    PyObject *constants, *ops;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sinOO", kwlist, &variant, &threads, &arena_size, &constants, &ops))
        return -1;
    if (self->ready) {
        PyErr_SetString(PyExc_ValueError, "an Engine is initialised once");
        return -1;
    }
    if (arena_size < 0) {
        PyErr_SetString(PyExc_ValueError, "arena_size must be >= 0");
        return -1;
    }
    PyObject *cseq = PySequence_Fast(constants, "constants must be a sequence of bytes-like objects");
    if (!cseq) return -1;
    Py_ssize_t nc = PySequence_Fast_GET_SIZE(cseq);
    Py_buffer *bufs = calloc((size_t)nc + 1, sizeof(Py_buffer));
    const void **data = calloc((size_t)nc + 1, sizeof(void *));
    size_t *lens = calloc((size_t)nc + 1, sizeof(size_t));
    Py_ssize_t got = 0;
    int rc = -1;
    char err[512] = "";
    if (!bufs || !data || !lens) {
        PyErr_NoMemory();
        goto out;
    }
    for (; got < nc; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(cseq, got), &bufs[got], PyBUF_SIMPLE) < 0) goto out;
        data[got] = bufs[got].buf;
        lens[got] = (size_t)bufs[got].len;
    }
    self->ready = 1; /* from here on dealloc frees the core engine */
    if (ev_engine_init(&self->e, variant, threads, (size_t)arena_size, (int)nc, data, lens, err, sizeof err) != 0) {
        PyErr_SetString(PyExc_ValueError, err);
        goto out;
    }
    if (add_ops(self, ops, err, sizeof err) != 0) goto out;
    if (ev_engine_finish(&self->e, err, sizeof err) != 0) {
        PyErr_SetString(PyExc_OSError, err);
        goto out;
    }
    rc = 0;
out:
    for (Py_ssize_t i = 0; i < got; i++) PyBuffer_Release(&bufs[i]);
    free(bufs);
    free(data);
    free(lens);
    Py_DECREF(cseq);
    if (rc != 0 && self->ready) {
        ev_engine_free(&self->e);
        self->ready = 0;
    }
    return rc;
}

static void engine_dealloc(Engine *self) {
    if (self->ready) ev_engine_free(&self->e);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *engine_invoke(Engine *self, PyObject *unused) {
    if (!self->ready) return PyErr_Format(PyExc_RuntimeError, "the Engine was not initialised");
    if (self->running) return PyErr_Format(PyExc_RuntimeError, "Engine.invoke() is already running in another thread");
    self->running = 1;
    Py_BEGIN_ALLOW_THREADS
    ev_engine_run(&self->e);
    Py_END_ALLOW_THREADS
    self->running = 0;
    Py_RETURN_NONE;
}

static PyObject *engine_kernels(Engine *self, void *closure) {
    int n = self->ready ? self->e.n_ops : 0;
    PyObject *l = PyList_New(n);
    if (!l) return NULL;
    for (int i = 0; i < n; i++) PyList_SET_ITEM(l, i, PyUnicode_FromString(self->e.k.ops[self->e.ops[i].kind].name));
    return l;
}

static PyObject *engine_variant(Engine *self, void *closure) {
    return PyUnicode_FromString(self->ready ? self->e.k.name : "");
}

static PyObject *engine_threads(Engine *self, void *closure) { return PyLong_FromLong(self->ready ? self->e.threads : 0); }

static int engine_getbuffer(Engine *self, Py_buffer *view, int flags) {
    if (!self->ready) {
        PyErr_SetString(PyExc_BufferError, "the Engine was not initialised");
        return -1;
    }
    int r = PyBuffer_FillInfo(view, (PyObject *)self, self->e.arena, (Py_ssize_t)self->e.arena_size, 0, flags);
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
