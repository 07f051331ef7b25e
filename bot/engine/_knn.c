/* The nearest-case search of bot.engine.learned.CaseIndex.search_ranks, compiled (and, below,
 * the linear model's logits).
 *
 * A search adds each of a paste's rarest features' squared IDF to every case that has the
 * feature, then keeps the ten cases of highest sum * inverse norm. In Python that is some 900
 * dict updates and tuples per paste, the largest single cost of a diagnosis (about a quarter
 * of `acrcheck diagnose --jsonl`); here it is a dense array and an insertion into ten places.
 *
 * The arithmetic is the Python loop's, in the same order: each case's sum grows feature by
 * feature, rarest first, starting from 0.0; score = sum * inverse_norm; similarity = score *
 * (1.0 / sqrt(query)); ties go to the later case (heapq.nlargest over (score, case) tuples).
 * The module is compiled with -ffp-contract=off so no multiply-add is fused, and the
 * neighbours and similarities are those of the Python loop bit for bit
 * (tests/test_knn_native.py checks every library paste). Where no compiler was available at
 * install time the module is absent and bot.engine.learned runs the Python loop.
 *
 * The scratch arrays belong to the index: searches are serialised by the GIL (nothing here
 * releases it), and each search leaves the scratch zeroed, also when it fails half-way. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    Py_ssize_t n_cases;
    Py_ssize_t n_features;
    int32_t *postings;
    Py_ssize_t *offsets; /* n_features + 1 */
    double *weights;     /* per feature: squared IDF */
    double *inverse;     /* per case: 1 / norm */
    double *acc;         /* scratch, zero between searches */
    int32_t *touched;    /* scratch */
} KnnIndex;

/* Free the arrays and forget them (dealloc, and __init__ called again on a built index: without
 * this a rebuilt index kept its earlier arrays for ever). */
static void KnnIndex_clear(KnnIndex *self) {
    PyMem_Free(self->postings);
    PyMem_Free(self->offsets);
    PyMem_Free(self->weights);
    PyMem_Free(self->inverse);
    PyMem_Free(self->acc);
    PyMem_Free(self->touched);
    self->postings = NULL, self->offsets = NULL, self->weights = NULL;
    self->inverse = NULL, self->acc = NULL, self->touched = NULL;
    self->n_cases = self->n_features = 0;
}

static void KnnIndex_dealloc(KnnIndex *self) {
    KnnIndex_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The arrays of an index of ``total`` postings over ``nf`` features and ``nc`` cases (the scratch
 * zeroed); -1 with MemoryError set when one cannot be had (KnnIndex_clear frees the others). */
static int KnnIndex_allocate(KnnIndex *self, Py_ssize_t total, Py_ssize_t nf, Py_ssize_t nc) {
    self->postings = PyMem_Malloc(sizeof(int32_t) * (total ? total : 1));
    self->offsets = PyMem_Malloc(sizeof(Py_ssize_t) * (nf + 1));
    self->weights = PyMem_Malloc(sizeof(double) * (nf ? nf : 1));
    self->inverse = PyMem_Malloc(sizeof(double) * (nc ? nc : 1));
    self->acc = PyMem_Calloc(nc ? nc : 1, sizeof(double));
    self->touched = PyMem_Malloc(sizeof(int32_t) * (nc ? nc : 1));
    if (!self->postings || !self->offsets || !self->weights || !self->inverse || !self->acc || !self->touched) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int KnnIndex_init(KnnIndex *self, PyObject *args, PyObject *kwds) {
    PyObject *lists, *weights, *inverse;
    static char *kwlist[] = {"postings", "weights", "inverse_norms", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!", kwlist, &PyList_Type, &lists, &PyList_Type, &weights,
                                     &PyList_Type, &inverse))
        return -1;
    KnnIndex_clear(self); /* __init__ called again: start from nothing */
    Py_ssize_t nf = PyList_GET_SIZE(lists), nc = PyList_GET_SIZE(inverse);
    if (PyList_GET_SIZE(weights) != nf) {
        PyErr_SetString(PyExc_ValueError, "one weight per feature");
        return -1;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t f = 0; f < nf; f++) {
        PyObject *cases = PyList_GET_ITEM(lists, f);
        if (!PyList_Check(cases)) {
            PyErr_SetString(PyExc_TypeError, "postings must be lists of case positions");
            return -1;
        }
        total += PyList_GET_SIZE(cases);
    }
    if (KnnIndex_allocate(self, total, nf, nc) < 0) return -1;
    Py_ssize_t at = 0;
    for (Py_ssize_t f = 0; f < nf; f++) {
        PyObject *cases = PyList_GET_ITEM(lists, f);
        self->offsets[f] = at;
        Py_ssize_t m = PyList_GET_SIZE(cases);
        for (Py_ssize_t j = 0; j < m; j++) {
            long i = PyLong_AsLong(PyList_GET_ITEM(cases, j));
            if (i == -1 && PyErr_Occurred()) return -1;
            if (i < 0 || i >= nc) {
                PyErr_SetString(PyExc_ValueError, "case position out of range");
                return -1;
            }
            self->postings[at++] = (int32_t)i;
        }
        double w = PyFloat_AsDouble(PyList_GET_ITEM(weights, f));
        if (w == -1.0 && PyErr_Occurred()) return -1;
        self->weights[f] = w;
    }
    self->offsets[nf] = at;
    for (Py_ssize_t i = 0; i < nc; i++) {
        double v = PyFloat_AsDouble(PyList_GET_ITEM(inverse, i));
        if (v == -1.0 && PyErr_Occurred()) return -1;
        self->inverse[i] = v;
    }
    self->n_cases = nc;
    self->n_features = nf;
    return 0;
}

/* KnnIndex.from_flat(postings, offsets, df_weights, inverse_norms): the index from the compact
 * form the learned artefact's cache keeps (bot.engine.learned_cache): ``postings`` every feature's
 * case positions end to end and ``offsets`` where each feature's run starts (n_features + 1
 * entries), both native int32 bytes; a feature's weight is ``df_weights[len(its run)]``. The
 * same index as KnnIndex(lists, weights, inverse_norms) over the same postings, without the
 * 125,000 Python lists that a one-shot answer would otherwise unmarshal and walk. */
static PyObject *KnnIndex_from_flat(PyTypeObject *type, PyObject *args) {
    Py_buffer flat, offs;
    PyObject *df_weights, *inverse;
    if (!PyArg_ParseTuple(args, "y*y*O!O!", &flat, &offs, &PyList_Type, &df_weights, &PyList_Type, &inverse))
        return NULL;
    KnnIndex *self = NULL;
    if (flat.len % (Py_ssize_t)sizeof(int32_t) || offs.len % (Py_ssize_t)sizeof(int32_t) || offs.len < (Py_ssize_t)sizeof(int32_t)) {
        PyErr_SetString(PyExc_ValueError, "postings and offsets must be int32 arrays (offsets: n_features + 1 entries)");
        goto done;
    }
    Py_ssize_t total = flat.len / (Py_ssize_t)sizeof(int32_t), nf = offs.len / (Py_ssize_t)sizeof(int32_t) - 1;
    Py_ssize_t nc = PyList_GET_SIZE(inverse), nw = PyList_GET_SIZE(df_weights);
    const int32_t *src = (const int32_t *)flat.buf, *at = (const int32_t *)offs.buf;
    self = (KnnIndex *)type->tp_alloc(type, 0);
    if (!self) goto done;
    if (KnnIndex_allocate(self, total, nf, nc) < 0) goto fail;
    if (at[0] != 0 || at[nf] != total) {
        PyErr_SetString(PyExc_ValueError, "offsets must start at 0 and end at the number of postings");
        goto fail;
    }
    for (Py_ssize_t f = 0; f < nf; f++) {
        Py_ssize_t start = at[f], end = at[f + 1];
        if (end < start || end - start >= nw) {
            PyErr_SetString(PyExc_ValueError, "offsets must not decrease, and every run needs its weight");
            goto fail;
        }
        self->offsets[f] = start;
        double w = PyFloat_AsDouble(PyList_GET_ITEM(df_weights, end - start));
        if (w == -1.0 && PyErr_Occurred()) goto fail;
        self->weights[f] = w;
    }
    self->offsets[nf] = total;
    for (Py_ssize_t j = 0; j < total; j++) {
        if (src[j] < 0 || src[j] >= nc) {
            PyErr_SetString(PyExc_ValueError, "case position out of range");
            goto fail;
        }
        self->postings[j] = src[j];
    }
    for (Py_ssize_t i = 0; i < nc; i++) {
        double v = PyFloat_AsDouble(PyList_GET_ITEM(inverse, i));
        if (v == -1.0 && PyErr_Occurred()) goto fail;
        self->inverse[i] = v;
    }
    self->n_cases = nc;
    self->n_features = nf;
    goto done;
fail:
    Py_CLEAR(self);
done:
    PyBuffer_Release(&flat);
    PyBuffer_Release(&offs);
    return (PyObject *)self;
}

/* search(order, limit, mask=None) -> [(case, similarity)], most similar first; ties: the later
 * case first. ``mask`` (bytes, one per case) keeps only the cases whose byte is not zero: the
 * search for the cases of one cause that a reply cites (before, a Python loop over every case
 * the paste's features touched: about 200 us of a cited answer). */
static PyObject *KnnIndex_search(KnnIndex *self, PyObject *args) {
    PyObject *order, *mask_object = Py_None;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "O!n|O", &PyList_Type, &order, &limit, &mask_object)) return NULL;
    const char *mask = NULL;
    if (mask_object != Py_None) {
        if (!PyBytes_Check(mask_object) || PyBytes_GET_SIZE(mask_object) != self->n_cases) {
            PyErr_SetString(PyExc_ValueError, "mask must be bytes, one per case");
            return NULL;
        }
        mask = PyBytes_AS_STRING(mask_object);
    }
    Py_ssize_t n = PyList_GET_SIZE(order);
    if (n == 0 || limit <= 0) return PyList_New(0);
    double *acc = self->acc;
    int32_t *touched = self->touched;
    Py_ssize_t n_touched = 0;
    double query = 0.0;
    for (Py_ssize_t q = 0; q < n; q++) {
        long r = PyLong_AsLong(PyList_GET_ITEM(order, q));
        if (r == -1 && PyErr_Occurred()) goto fail;
        if (r < 0 || r >= self->n_features) {
            PyErr_SetString(PyExc_IndexError, "feature rank out of range");
            goto fail;
        }
        double w2 = self->weights[r];
        query += w2;
        for (Py_ssize_t j = self->offsets[r]; j < self->offsets[r + 1]; j++) {
            int32_t i = self->postings[j];
            if (acc[i] == 0.0) touched[n_touched++] = i;
            acc[i] = acc[i] + w2;
        }
    }
    /* the top `limit` by (score, case) descending: a small sorted array, insertion */
    Py_ssize_t k = limit < n_touched ? limit : n_touched;
    double *best_s = PyMem_Malloc(sizeof(double) * (k ? k : 1));
    int32_t *best_i = PyMem_Malloc(sizeof(int32_t) * (k ? k : 1));
    if (!best_s || !best_i) {
        PyMem_Free(best_s);
        PyMem_Free(best_i);
        PyErr_NoMemory();
        goto fail;
    }
    Py_ssize_t held = 0;
    for (Py_ssize_t t = 0; t < n_touched; t++) {
        int32_t i = touched[t];
        double s = acc[i] * self->inverse[i];
        acc[i] = 0.0;
        if (mask && !mask[i]) continue;
        if (held == k) {
            if (s < best_s[k - 1] || (s == best_s[k - 1] && i < best_i[k - 1])) continue;
            held--;
        }
        Py_ssize_t p = held;
        while (p > 0 && (best_s[p - 1] < s || (best_s[p - 1] == s && best_i[p - 1] < i))) {
            best_s[p] = best_s[p - 1];
            best_i[p] = best_i[p - 1];
            p--;
        }
        best_s[p] = s;
        best_i[p] = i;
        held++;
    }
    n_touched = 0;
    double scale = 1.0 / sqrt(query);
    PyObject *result = PyList_New(held);
    if (!result) goto fail_best;
    for (Py_ssize_t p = 0; p < held; p++) {
        PyObject *pair = Py_BuildValue("(id)", (int)best_i[p], best_s[p] * scale);
        if (!pair) {
            Py_DECREF(result);
            result = NULL;
            break;
        }
        PyList_SET_ITEM(result, p, pair);
    }
    PyMem_Free(best_s);
    PyMem_Free(best_i);
    return result;
fail_best:
    PyMem_Free(best_s);
    PyMem_Free(best_i);
    return NULL;
fail:
    for (Py_ssize_t t = 0; t < n_touched; t++) acc[touched[t]] = 0.0;
    return NULL;
}

static PyMethodDef KnnIndex_methods[] = {
    {"search", (PyCFunction)KnnIndex_search, METH_VARARGS,
     "search(order, limit, mask=None): the most similar cases (of those the mask keeps) for the ranks of a paste's features"},
    {"from_flat", (PyCFunction)KnnIndex_from_flat, METH_VARARGS | METH_CLASS,
     "from_flat(postings, offsets, df_weights, inverse_norms): the index from int32 postings end to end and their offsets"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KnnIndexType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "bot.engine._knn.KnnIndex",
    .tp_basicsize = sizeof(KnnIndex),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)KnnIndex_init,
    .tp_dealloc = (destructor)KnnIndex_dealloc,
    .tp_methods = KnnIndex_methods,
    .tp_doc = "The case library's inverted index, searched in C (same results as the Python loop).",
};

/* The linear model's logits (bot.engine.learned.LinearModel.logits), compiled: the bias plus the
 * weights of a paste's features, added row by row in the order given and, within a row, in the
 * stored order, exactly as the Python loop adds them (so the sums are the same bit for bit). */
typedef struct {
    PyObject_HEAD
    Py_ssize_t n_classes;
    Py_ssize_t n_rows;
    double *bias;
    Py_ssize_t *offsets; /* n_rows + 1 */
    int32_t *targets;
    double *values;
} LinearScorer;

/* Free the weights and forget them (dealloc, and __init__ called again on a built scorer). */
static void LinearScorer_clear(LinearScorer *self) {
    PyMem_Free(self->bias);
    PyMem_Free(self->offsets);
    PyMem_Free(self->targets);
    PyMem_Free(self->values);
    self->bias = NULL, self->offsets = NULL, self->targets = NULL, self->values = NULL;
    self->n_classes = self->n_rows = 0;
}

static void LinearScorer_dealloc(LinearScorer *self) {
    LinearScorer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int LinearScorer_init(LinearScorer *self, PyObject *args, PyObject *kwds) {
    PyObject *bias, *offsets, *targets, *values;
    static char *kwlist[] = {"bias", "offsets", "targets", "values", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!", kwlist, &PyList_Type, &bias, &PyList_Type, &offsets,
                                     &PyList_Type, &targets, &PyList_Type, &values))
        return -1;
    LinearScorer_clear(self); /* __init__ called again: start from nothing */
    Py_ssize_t nc = PyList_GET_SIZE(bias), no = PyList_GET_SIZE(offsets), ne = PyList_GET_SIZE(targets);
    if (nc == 0 || no == 0 || PyList_GET_SIZE(values) != ne) {
        PyErr_SetString(PyExc_ValueError, "bias, offsets and one target per value are needed");
        return -1;
    }
    self->bias = PyMem_Malloc(sizeof(double) * nc);
    self->offsets = PyMem_Malloc(sizeof(Py_ssize_t) * no);
    self->targets = PyMem_Malloc(sizeof(int32_t) * (ne ? ne : 1));
    self->values = PyMem_Malloc(sizeof(double) * (ne ? ne : 1));
    if (!self->bias || !self->offsets || !self->targets || !self->values) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < nc; k++) {
        double b = PyFloat_AsDouble(PyList_GET_ITEM(bias, k));
        if (b == -1.0 && PyErr_Occurred()) return -1;
        self->bias[k] = b;
    }
    Py_ssize_t previous = 0;
    for (Py_ssize_t r = 0; r < no; r++) {
        Py_ssize_t o = PyLong_AsSsize_t(PyList_GET_ITEM(offsets, r));
        if (o == -1 && PyErr_Occurred()) return -1;
        if (o < previous || o > ne || (r == 0 && o != 0) || (r == no - 1 && o != ne)) {
            PyErr_SetString(PyExc_ValueError, "offsets must rise from 0 to the number of values");
            return -1;
        }
        self->offsets[r] = previous = o;
    }
    for (Py_ssize_t j = 0; j < ne; j++) {
        long k = PyLong_AsLong(PyList_GET_ITEM(targets, j));
        if (k == -1 && PyErr_Occurred()) return -1;
        if (k < 0 || k >= nc) {
            PyErr_SetString(PyExc_ValueError, "class index out of range");
            return -1;
        }
        self->targets[j] = (int32_t)k;
        double w = PyFloat_AsDouble(PyList_GET_ITEM(values, j));
        if (w == -1.0 && PyErr_Occurred()) return -1;
        self->values[j] = w;
    }
    self->n_classes = nc;
    self->n_rows = no - 1;
    return 0;
}

/* logits(rows) -> [float]: the bias plus the rows' weights, in the order of `rows`. */
static PyObject *LinearScorer_logits(LinearScorer *self, PyObject *args) {
    PyObject *rows;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &rows)) return NULL;
    if (self->bias == NULL || self->n_classes == 0) {
        PyErr_SetString(PyExc_RuntimeError, "LinearScorer was not initialised");
        return NULL;
    }
    Py_ssize_t nc = self->n_classes;
    double stack[64];
    double *z = nc <= 64 ? stack : PyMem_Malloc(sizeof(double) * nc);
    if (!z) return PyErr_NoMemory();
    memcpy(z, self->bias, sizeof(double) * nc);
    Py_ssize_t n = PyList_GET_SIZE(rows);
    PyObject *result = NULL;
    for (Py_ssize_t q = 0; q < n; q++) {
        long r = PyLong_AsLong(PyList_GET_ITEM(rows, q));
        if (r == -1 && PyErr_Occurred()) goto done;
        if (r < 0 || r >= self->n_rows) {
            PyErr_SetString(PyExc_IndexError, "row out of range");
            goto done;
        }
        for (Py_ssize_t j = self->offsets[r]; j < self->offsets[r + 1]; j++) {
            z[self->targets[j]] = z[self->targets[j]] + self->values[j];
        }
    }
    result = PyList_New(nc);
    if (!result) goto done;
    for (Py_ssize_t k = 0; k < nc; k++) {
        PyObject *v = PyFloat_FromDouble(z[k]);
        if (!v) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, k, v);
    }
done:
    if (z != stack) PyMem_Free(z);
    return result;
}

static PyMethodDef LinearScorer_methods[] = {
    {"logits", (PyCFunction)LinearScorer_logits, METH_VARARGS, "logits(rows): the bias plus the weights of those rows"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LinearScorerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "bot.engine._knn.LinearScorer",
    .tp_basicsize = sizeof(LinearScorer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)LinearScorer_init,
    .tp_dealloc = (destructor)LinearScorer_dealloc,
    .tp_methods = LinearScorer_methods,
    .tp_doc = "The linear model's weights, summed in C (same results as the Python loop).",
};

static struct PyModuleDef knn_module = {PyModuleDef_HEAD_INIT, "_knn", "Nearest-case search and linear logits in C.", -1, NULL};

PyMODINIT_FUNC PyInit__knn(void) {
    if (PyType_Ready(&KnnIndexType) < 0 || PyType_Ready(&LinearScorerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&knn_module);
    if (!m) return NULL;
    Py_INCREF(&KnnIndexType);
    if (PyModule_AddObject(m, "KnnIndex", (PyObject *)&KnnIndexType) < 0) {
        Py_DECREF(&KnnIndexType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&LinearScorerType);
    if (PyModule_AddObject(m, "LinearScorer", (PyObject *)&LinearScorerType) < 0) {
        Py_DECREF(&LinearScorerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
