/* Python face of the fused preprocessing kernel (preprocess.h):
 *
 *   _native.preprocess_plan(fields: dict, planes: sequence of dict) -> PreprocessPlan
 *       Builds a struct ev_preprocess_plan from what edgevision/native/preprocess.py computed, copying every
 *       table into memory the plan owns, and checks it (ev_preprocess_plan_check): a bad plan is a ValueError
 *       here, never a wild read later.
 *   PreprocessPlan.run(src, dst, variant, row_begin=0, row_end=-1, threads=1) -> str
 *       Runs the variant's kernel with the GIL released and returns the name of the C function that ran
 *       (e.g. "ev_preprocess_avx2"). src: any buffer of bytes laid out as the plan says (C-contiguous, or a
 *       strided H x W x bytes-per-pixel view with positive strides); dst: a writable C-contiguous buffer of
 *       exactly out_h*out_w*out_c int8 ('b') or uint8 ('B') items. Both are checked against the plan before
 *       any C code touches them.
 *   PreprocessPlan.src_size: bytes the frame buffer must span.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "preprocess.h"
#include "variants.h"

typedef struct {
    PyObject_HEAD struct ev_preprocess_plan plan;
    int32_t *tables; /* owned: every plane's x0, x1, wx, y0, y1, wy */
} PlanObject;

static void plan_dealloc(PlanObject *self) {
    free(self->tables);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- reading the dicts ---- */

static int get_i64(PyObject *d, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    PyObject *v = PyDict_GetItemString(d, key); /* borrowed */
    if (!v) {
        PyErr_Format(PyExc_ValueError, "preprocess plan: missing field %s", key);
        return -1;
    }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (overflow || x < lo || x > hi) {
        PyErr_Format(PyExc_ValueError, "preprocess plan: field %s = %R outside [%lld, %lld]", key, v, (long long)lo,
                     (long long)hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int get_i32(PyObject *d, const char *key, int32_t *out) {
    int64_t x;
    if (get_i64(d, key, INT32_MIN, INT32_MAX, &x)) return -1;
    *out = (int32_t)x;
    return 0;
}

/* A sequence of exactly n ints (each within [lo, hi]) into out. */
static int get_seq(PyObject *d, const char *key, Py_ssize_t n, int64_t lo, int64_t hi, int64_t *out) {
    PyObject *v = PyDict_GetItemString(d, key);
    if (!v) {
        PyErr_Format(PyExc_ValueError, "preprocess plan: missing field %s", key);
        return -1;
    }
    PyObject *seq = PySequence_Fast(v, "preprocess plan: a table must be a sequence of ints");
    if (!seq) return -1;
    if (PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_Format(PyExc_ValueError, "preprocess plan: field %s has %zd entries, expected %zd", key,
                     PySequence_Fast_GET_SIZE(seq), n);
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(item, &overflow);
        if ((x == -1 && PyErr_Occurred()) || overflow || x < lo || x > hi) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "preprocess plan: %s[%zd] = %R outside [%lld, %lld]", key, i, item,
                             (long long)lo, (long long)hi);
            Py_DECREF(seq);
            return -1;
        }
        out[i] = x;
    }
    Py_DECREF(seq);
    return 0;
}

static int get_i32_seq(PyObject *d, const char *key, Py_ssize_t n, int32_t *out) {
    int64_t *tmp = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!tmp) {
        PyErr_NoMemory();
        return -1;
    }
    int rc = get_seq(d, key, n, INT32_MIN, INT32_MAX, tmp);
    if (rc == 0)
        for (Py_ssize_t i = 0; i < n; i++) out[i] = (int32_t)tmp[i];
    PyMem_Free(tmp);
    return rc;
}

static PyTypeObject PlanType;

static PyObject *py_preprocess_plan(PyObject *self, PyObject *args) {
    PyObject *fields, *planes;
    if (!PyArg_ParseTuple(args, "O!O:preprocess_plan", &PyDict_Type, &fields, &planes)) return NULL;
    PyObject *pseq = PySequence_Fast(planes, "preprocess_plan: planes must be a sequence of dicts");
    if (!pseq) return NULL;
    PlanObject *obj = PyObject_New(PlanObject, &PlanType);
    if (!obj) {
        Py_DECREF(pseq);
        return NULL;
    }
    obj->tables = NULL;
    struct ev_preprocess_plan *pl = &obj->plan;
    memset(pl, 0, sizeof *pl);
    int64_t tmp[3];
    if (get_i32(fields, "mode", &pl->mode) || get_i32(fields, "out_h", &pl->out_h) ||
        get_i32(fields, "out_w", &pl->out_w) || get_i32(fields, "out_c", &pl->out_c) ||
        get_i32(fields, "dt", &pl->dt) || get_i32(fields, "dl", &pl->dl) || get_i32(fields, "dh", &pl->dh) ||
        get_i32(fields, "dw", &pl->dw) || get_i32(fields, "qmin", &pl->qmin) || get_i32(fields, "qmax", &pl->qmax) ||
        get_i32(fields, "fill", &pl->fill) || get_i32(fields, "qshift", &pl->qshift) ||
        get_i32_seq(fields, "qa", 3, pl->qa) || get_seq(fields, "qb", 3, INT64_MIN, INT64_MAX, tmp))
        goto fail;
    for (int k = 0; k < 3; k++) pl->qb[k] = tmp[k];
    if (get_i32(fields, "yuv_cy", &pl->yuv_cy) || get_i32(fields, "yuv_yoff", &pl->yuv_yoff) ||
        get_i32_seq(fields, "yuv_cu", 3, pl->yuv_cu) || get_i32_seq(fields, "yuv_cv", 3, pl->yuv_cv))
        goto fail;
    Py_ssize_t np_ = PySequence_Fast_GET_SIZE(pseq);
    if (np_ < 1 || np_ > 3) {
        PyErr_Format(PyExc_ValueError, "preprocess plan: %zd planes, expected 1 to 3", np_);
        goto fail;
    }
    pl->n_planes = (int32_t)np_;
    if (pl->dh < 1 || pl->dw < 1 || pl->dh > EV_PP_MAX_DIM || pl->dw > EV_PP_MAX_DIM) {
        PyErr_Format(PyExc_ValueError, "preprocess plan: destination %dx%d outside 1..%d", (int)pl->dh, (int)pl->dw,
                     EV_PP_MAX_DIM);
        goto fail;
    }
    size_t per_plane = 3 * (size_t)pl->dw + 3 * (size_t)pl->dh;
    obj->tables = malloc(per_plane * (size_t)np_ * sizeof(int32_t));
    if (!obj->tables) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t p = 0; p < np_; p++) {
        PyObject *d = PySequence_Fast_GET_ITEM(pseq, p);
        if (!PyDict_Check(d)) {
            PyErr_SetString(PyExc_TypeError, "preprocess_plan: each plane must be a dict");
            goto fail;
        }
        ev_pp_plane *q = &pl->planes[p];
        int64_t base;
        if (get_i64(d, "base", 0, INT64_MAX / 4, &base) || get_i32(d, "row_stride", &q->row_stride) ||
            get_i32(d, "pixel_stride", &q->pixel_stride) || get_i32(d, "width", &q->width) ||
            get_i32(d, "height", &q->height) || get_i32(d, "crop_top", &q->crop_top) ||
            get_i32(d, "crop_left", &q->crop_left) || get_i32(d, "channels", &q->channels) ||
            get_i32_seq(d, "chan_off", 3, q->chan_off) || get_i32(d, "f", &q->f) || get_i32(d, "recip", &q->recip) ||
            get_i32(d, "vw", &q->vw) || get_i32(d, "vh", &q->vh))
            goto fail;
        q->base = base;
        int32_t *t = obj->tables + per_plane * (size_t)p;
        int32_t *x0 = t, *x1 = t + pl->dw, *wx = t + 2 * pl->dw, *y0 = t + 3 * pl->dw, *y1 = y0 + pl->dh,
                *wy = y0 + 2 * pl->dh;
        if (get_i32_seq(d, "x0", pl->dw, x0) || get_i32_seq(d, "x1", pl->dw, x1) || get_i32_seq(d, "wx", pl->dw, wx) ||
            get_i32_seq(d, "y0", pl->dh, y0) || get_i32_seq(d, "y1", pl->dh, y1) || get_i32_seq(d, "wy", pl->dh, wy))
            goto fail;
        q->x0 = x0, q->x1 = x1, q->wx = wx, q->y0 = y0, q->y1 = y1, q->wy = wy;
    }
    char err[256];
    if (ev_preprocess_plan_check(pl, err, sizeof err) != 0) {
        PyErr_Format(PyExc_ValueError, "invalid preprocess plan: %s", err);
        goto fail;
    }
    Py_DECREF(pseq);
    return (PyObject *)obj;
fail:
    Py_DECREF(pseq);
    Py_DECREF(obj);
    return NULL;
}

/* ---- running ---- */

typedef struct {
    ev_preprocess_fn fn;
    const struct ev_preprocess_plan *plan;
    const uint8_t *src;
    void *dst;
    int begin, end;
} job;

static void *job_main(void *arg) {
    job *j = arg;
    if (j->begin < j->end) j->fn(j->plan, j->src, j->dst, j->begin, j->end);
    return NULL;
}

static int item_is_byte(const Py_buffer *b) {
    if (b->itemsize != 1) return 0;
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=' || *f == '<' || *f == '>' || *f == '!') f++;
    return (f[0] == 'B' || f[0] == 'b' || f[0] == 'c') && f[1] == 0;
}

/* Checks src against the plan; returns the address of byte 0 of the frame, or NULL with an exception set. */
static const uint8_t *check_src(const struct ev_preprocess_plan *pl, Py_buffer *b) {
    const ev_pp_plane *p0 = &pl->planes[0];
    if (!item_is_byte(b)) {
        PyErr_Format(PyExc_ValueError, "frame data must be bytes (uint8), got items of %zd bytes, format %s",
                     b->itemsize, b->format ? b->format : "B");
        return NULL;
    }
    Py_ssize_t span = b->ndim == 0 ? b->len : 1;
    for (int i = 0; i < b->ndim; i++) {
        if (b->shape[i] == 0) {
            span = 0;
            break;
        }
        if (b->strides[i] < 0) {
            PyErr_SetString(PyExc_ValueError, "frame data has a negative stride (a reversed view); pass "
                                              "np.ascontiguousarray(data)");
            return NULL;
        }
        span += (b->shape[i] - 1) * b->strides[i];
    }
    int contiguous = PyBuffer_IsContiguous(b, 'C');
    if (pl->mode == EV_PP_YUV) {
        if (!contiguous) {
            PyErr_SetString(PyExc_ValueError, "yuv420 frame data must be one C-contiguous buffer (Y, U, V planes)");
            return NULL;
        }
    } else if (b->ndim >= 2) {
        /* rows: the first axis; bytes within a row: the rest, which must run forwards one byte at a time */
        const char *why = NULL;
        if (b->strides[0] != p0->row_stride) why = "its row stride";
        else if (b->shape[0] < p0->height) why = "its height";
        else if (b->strides[b->ndim - 1] != 1) why = "its last axis stride (must be 1)";
        else if (b->ndim == 3 && (b->shape[2] != p0->pixel_stride || b->strides[1] != p0->pixel_stride ||
                                  b->shape[1] < p0->width))
            why = "its pixel layout (width x bytes per pixel)";
        else if (b->ndim == 2 && b->shape[1] < (Py_ssize_t)p0->width * p0->pixel_stride) why = "its row length";
        else if (b->ndim > 3) why = "its number of dimensions";
        if (why) {
            PyObject *shape = PyTuple_New(b->ndim), *strides = PyTuple_New(b->ndim);
            for (int i = 0; shape && strides && i < b->ndim; i++) {
                PyTuple_SET_ITEM(shape, i, PyLong_FromSsize_t(b->shape[i]));
                PyTuple_SET_ITEM(strides, i, PyLong_FromSsize_t(b->strides[i]));
            }
            if (shape && strides)
                PyErr_Format(PyExc_ValueError,
                             "frame data does not match the plan (%s): got shape %R strides %R; the plan wants %d "
                             "rows of %d pixels of %d bytes, rows %d bytes apart",
                             why, shape, strides, (int)p0->height, (int)p0->width, (int)p0->pixel_stride,
                             (int)p0->row_stride);
            Py_XDECREF(shape);
            Py_XDECREF(strides);
            return NULL;
        }
    } else if (!contiguous) {
        PyErr_SetString(PyExc_ValueError, "frame data: a 1-D buffer must be contiguous");
        return NULL;
    }
    if (span < pl->src_size) {
        PyErr_Format(PyExc_ValueError,
                     "frame data too small: it spans %zd bytes, the plan (%d rows of stride %d%s) needs %lld", span,
                     (int)p0->height, (int)p0->row_stride, pl->mode == EV_PP_YUV ? " plus the U and V planes" : "",
                     (long long)pl->src_size);
        return NULL;
    }
    return (const uint8_t *)b->buf;
}

static PyObject *plan_run(PlanObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"src", "dst", "variant", "row_begin", "row_end", "threads", NULL};
    PyObject *src_obj, *dst_obj;
    const char *variant;
    int rb = 0, re = -1, threads = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOs|iii:run", kwlist, &src_obj, &dst_obj, &variant, &rb, &re, &threads))
        return NULL;
    const struct ev_preprocess_plan *pl = &self->plan;
    ev_kernels k;
    if (ev_variant_table(variant, &k) != 0) {
        PyObject *names = PyUnicode_FromString("");
        for (int i = 0; names && i < ev_variant_count(); i++)
            PyUnicode_AppendAndDel(&names, PyUnicode_FromFormat("%s%s", i ? ", " : "", ev_variant_name(i)));
        PyErr_Format(PyExc_ValueError, "no kernel variant '%s' in this build (built: %U)", variant, names);
        Py_XDECREF(names);
        return NULL;
    }
    /* cpuid is slow (a VM exit under virtualisation): ask once per variant name */
    static int supported[16]; /* index in the built list: 0 unknown, 1 yes, 2 no */
    int vi = -1;
    for (int i = 0; i < ev_variant_count() && i < 16; i++)
        if (strcmp(ev_variant_name(i), variant) == 0) vi = i;
    if (vi >= 0 && supported[vi] == 0) supported[vi] = ev_cpu_supports(variant) == 1 ? 1 : 2;
    if (vi < 0 || supported[vi] != 1)
        return PyErr_Format(PyExc_ValueError, "this CPU cannot run kernel variant '%s' (%s)", variant, ev_cpu_features());
    if (!k.preprocess.run) return PyErr_Format(PyExc_ValueError, "variant '%s' has no preprocess kernel", variant);
    if (re < 0) re = pl->out_h;
    if (rb < 0 || rb > re || re > pl->out_h)
        return PyErr_Format(PyExc_ValueError, "rows [%d, %d) not inside [0, %d]", rb, re, (int)pl->out_h);
    if (threads < 1 || threads > 64) return PyErr_Format(PyExc_ValueError, "threads must be 1..64, got %d", threads);

    Py_buffer s, d;
    if (PyObject_GetBuffer(src_obj, &s, PyBUF_RECORDS_RO) < 0) {
        if (PyErr_ExceptionMatches(PyExc_BufferError) || PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "frame data must be a buffer of bytes (numpy uint8 array), got %.80s",
                         Py_TYPE(src_obj)->tp_name);
        }
        return NULL;
    }
    if (PyObject_GetBuffer(dst_obj, &d, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&s);
        if (PyErr_ExceptionMatches(PyExc_BufferError) || PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "out must be a writable C-contiguous int8/uint8 array, got %.80s",
                         Py_TYPE(dst_obj)->tp_name);
        }
        return NULL;
    }
    PyObject *ret = NULL;
    const uint8_t *src = check_src(pl, &s);
    if (!src) goto done;
    {
        const char *want = pl->qmin < 0 ? "b" : "B";
        const char *f = d.format ? d.format : "B";
        if (*f == '@' || *f == '=' || *f == '<' || *f == '>' || *f == '!') f++;
        Py_ssize_t need = (Py_ssize_t)pl->out_h * pl->out_w * pl->out_c;
        if (d.itemsize != 1 || strcmp(f, want) != 0) {
            PyErr_Format(PyExc_ValueError, "out has item format '%s' (%zd bytes), the plan writes %s", d.format ? d.format : "B",
                         d.itemsize, pl->qmin < 0 ? "int8 ('b')" : "uint8 ('B')");
            goto done;
        }
        if (d.len != need) {
            PyErr_Format(PyExc_ValueError, "out holds %zd bytes, the plan writes %dx%dx%d = %zd", d.len, (int)pl->out_h,
                         (int)pl->out_w, (int)pl->out_c, need);
            goto done;
        }
        const uint8_t *dlo = d.buf, *dhi = dlo + d.len, *slo = src, *shi = src + pl->src_size;
        if (dlo < shi && slo < dhi) {
            PyErr_SetString(PyExc_ValueError, "out overlaps the frame data");
            goto done;
        }
    }
    {
        ev_preprocess_fn fn = k.preprocess.run;
        int n = re - rb, started = 0;
        if (threads > n) threads = n > 0 ? n : 1;
        job jobs[64];
        pthread_t tids[64];
        Py_BEGIN_ALLOW_THREADS;
        for (int t = 0; t < threads; t++) {
            int b, e;
            ev_split(n, threads, t, &b, &e);
            jobs[t] = (job){fn, pl, src, d.buf, rb + b, rb + e};
        }
        for (int t = 1; t < threads; t++) {
            if (pthread_create(&tids[t], NULL, job_main, &jobs[t]) != 0) break;
            started = t;
        }
        job_main(&jobs[0]);
        for (int t = 1; t <= started; t++) pthread_join(tids[t], NULL);
        for (int t = started + 1; t < threads; t++) job_main(&jobs[t]); /* threads that failed to start */
        Py_END_ALLOW_THREADS;
    }
    ret = PyUnicode_FromString(k.preprocess.name);
done:
    PyBuffer_Release(&s);
    PyBuffer_Release(&d);
    return ret;
}

static PyObject *plan_get_src_size(PlanObject *self, void *c) { return PyLong_FromLongLong(self->plan.src_size); }

static PyMethodDef plan_methods[] = {
    {"run", (PyCFunction)(void (*)(void))plan_run, METH_VARARGS | METH_KEYWORDS,
     "run(src, dst, variant, row_begin=0, row_end=-1, threads=1) -> name of the C function that ran"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef plan_getset[] = {
    {"src_size", (getter)plan_get_src_size, NULL, "bytes the frame buffer must span", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "edgevision._native.PreprocessPlan",
    .tp_basicsize = sizeof(PlanObject),
    .tp_dealloc = (destructor)plan_dealloc,
    .tp_flags = 0, /* set by PyType_Ready (Py_TPFLAGS_DEFAULT below) */
    .tp_doc = "A checked fused-preprocessing plan (see edgevision.native.preprocess).",
    .tp_methods = plan_methods,
    .tp_getset = plan_getset,
};

/* The module's method entry (module.c lists it). */
PyObject *ev_py_preprocess_plan(PyObject *self, PyObject *args) {
    if (!PyType_HasFeature(&PlanType, Py_TPFLAGS_READY)) {
        PlanType.tp_flags = Py_TPFLAGS_DEFAULT;
        if (PyType_Ready(&PlanType) < 0) return NULL;
    }
    return py_preprocess_plan(self, args);
}
