/* edgevision._native: the Python face of the native engine (see ev.h). Functions here check their arguments
 * and hand off to C; anything a user can get wrong raises ValueError/TypeError with what was expected. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "ev.h"
#include "variants.h"

static PyObject *py_compiled_variants(PyObject *self, PyObject *unused) {
    int n = ev_variant_count();
    PyObject *t = PyTuple_New(n);
    if (!t) return NULL;
    for (int i = 0; i < n; i++) PyTuple_SET_ITEM(t, i, PyUnicode_FromString(ev_variant_name(i)));
    return t;
}

static PyObject *py_cpu_supports(PyObject *self, PyObject *arg) {
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    int r = ev_cpu_supports(name);
    if (r < 0) Py_RETURN_NONE;
    return PyBool_FromLong(r);
}

static PyObject *py_cpu_features(PyObject *self, PyObject *unused) { return PyUnicode_FromString(ev_cpu_features()); }

static PyObject *py_kernel_names(PyObject *self, PyObject *arg) {
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    ev_kernels k;
    if (ev_variant_table(name, &k) != 0) return PyErr_Format(PyExc_ValueError, "no kernel variant %R in this build", arg);
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (int i = 0; i < EV_OP_COUNT; i++) {
        PyObject *v = k.ops[i].run ? PyUnicode_FromString(k.ops[i].name) : Py_NewRef(Py_None);
        if (!v || PyDict_SetItemString(d, ev_op_name(i), v) < 0) { Py_XDECREF(v); Py_DECREF(d); return NULL; }
        Py_DECREF(v);
    }
    PyObject *v = k.preprocess.run ? PyUnicode_FromString(k.preprocess.name) : Py_NewRef(Py_None);
    if (!v || PyDict_SetItemString(d, "preprocess", v) < 0) { Py_XDECREF(v); Py_DECREF(d); return NULL; }
    Py_DECREF(v);
    return d;
}

PyObject *ev_py_preprocess_plan(PyObject *self, PyObject *args); /* preprocess_py.c */

static PyMethodDef methods[] = {
    {"compiled_variants", py_compiled_variants, METH_NOARGS, "Names of the kernel variants built in, baseline first."},
    {"cpu_supports", py_cpu_supports, METH_O, "cpu_supports(name): True/False, or None for a variant not built here."},
    {"cpu_features", py_cpu_features, METH_NOARGS, "What CPU feature detection saw, one line."},
    {"kernel_names", py_kernel_names, METH_O,
     "kernel_names(variant): {op: C function that runs it} after fallbacks (None: not implemented)."},
    {"preprocess_plan", ev_py_preprocess_plan, METH_VARARGS,
     "preprocess_plan(fields, planes) -> PreprocessPlan: a checked fused-preprocessing plan (preprocess_py.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "edgevision._native",
                                    "The native engine's C kernels (see edgevision.native).", -1, methods};

extern PyTypeObject ev_EngineType;

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&ev_EngineType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ev_EngineType);
    if (PyModule_AddObject(m, "Engine", (PyObject *)&ev_EngineType) < 0) {
        Py_DECREF(&ev_EngineType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
