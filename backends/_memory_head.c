/* The in-memory backend's hot write path in C: append each row of a batch to its series' head.
 *
 * append_next(series, newest, ids, timestamps, values, seal_at) -> list
 *
 *   series      list of Series objects (backends/memory_series.py), indexed by id
 *   newest      array('q'): each series' newest timestamp, indexed by id (written here)
 *   ids         list of int: the series id of each row (an id may repeat)
 *   timestamps  buffer of int64, one per row
 *   values      buffer of float64, one per row
 *   seal_at     a head of this many samples is due to be sealed
 *
 * Every row is checked first: its id is in range and its timestamp after the series'
 * newest, counting the rows of the same series before it (so a series may appear twice
 * if its timestamps rise). If one is not, nothing is stored, newest is as it was, and
 * None is returned (the caller takes the general path). Otherwise every row is appended
 * to series.head_ts / series.head_values (array.array objects), newest holds each
 * series' last row, and the list of series whose head reached seal_at is returned for
 * the caller to seal. The pure-Python loop in backends/memory.py
 * stores the same samples; it sends a request that names a series twice to the general
 * path, which stores them the same way.
 *
 * Rows name series all over memory, so most of the time would go to waiting for it:
 * each series object is fetched early while the rows are checked, and the head arrays
 * of the series a few rows ahead while the rows are stored (through the offsets of the
 * Series __slots__; only as a hint, every access goes through the attributes).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)0)
#endif

/* Rows ahead of the one being stored whose series' head arrays are fetched meanwhile
 * (the series objects themselves are fetched while the rows are checked). */
#define APPEND_AHEAD 8

static PyObject *str_head_ts;
static PyObject *str_head_values;
static PyObject *str_append;

/* The offset of a __slots__ attribute of type in its instances, or -1 when it is not one.
 * Used only to fetch memory early: every read and write goes through the attribute. */
static Py_ssize_t
slot_offset(PyTypeObject *type, PyObject *name)
{
    PyObject *descr = _PyType_Lookup(type, name); /* borrowed */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        return -1;
    }
    const PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    return member->type == T_OBJECT_EX ? member->offset : -1;
}

/* Start fetching the head arrays of target, if it is of type (whose slots are at the offsets). */
static inline void
prefetch_heads(PyObject *target, PyTypeObject *type, Py_ssize_t ts_offset, Py_ssize_t values_offset)
{
    if (Py_TYPE(target) != type) {
        return;
    }
    PyObject *head = *(PyObject **)((char *)target + ts_offset);
    PyObject *head_values = *(PyObject **)((char *)target + values_offset);
    if (head != NULL) {
        PREFETCH(head);
    }
    if (head_values != NULL) {
        PREFETCH(head_values);
    }
}

static int
append_one(PyObject *array, PyObject *item)
{
    PyObject *done = PyObject_CallMethodOneArg(array, str_append, item);
    Py_DECREF(item);
    if (done == NULL)
        return -1;
    Py_DECREF(done);
    return 0;
}

static PyObject *
append_next(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "append_next takes 6 arguments");
        return NULL;
    }
    PyObject *series = args[0], *ids = args[2];
    if (!PyList_Check(series) || !PyList_Check(ids)) {
        PyErr_SetString(PyExc_TypeError, "series and ids must be lists");
        return NULL;
    }
    Py_ssize_t seal_at = PyLong_AsSsize_t(args[5]);
    if (seal_at == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer newest, ts, vs;
    if (PyObject_GetBuffer(args[1], &newest, PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[3], &ts, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&newest);
        return NULL;
    }
    if (PyObject_GetBuffer(args[4], &vs, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&newest);
        PyBuffer_Release(&ts);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t *row_ids = NULL; /* each row's series id, once checked */
    long long *before = NULL;   /* each row's series' newest before the row */
    Py_ssize_t rows = PyList_GET_SIZE(ids);
    Py_ssize_t count = PyList_GET_SIZE(series);
    if (newest.itemsize != 8 || newest.len != 8 * count || ts.len != 8 * rows || vs.len != 8 * rows) {
        PyErr_SetString(PyExc_ValueError, "newest, timestamps and values do not match series and ids");
        goto done;
    }
    long long *newest_ts = (long long *)newest.buf;
    const long long *row_ts = (const long long *)ts.buf;
    const double *row_vs = (const double *)vs.buf;
    /* Check every row before storing any: each row moves its series' newest on, and the
     * old newest is kept so that a refused request leaves newest as it was. */
    row_ids = PyMem_Malloc(rows ? (size_t)rows * sizeof *row_ids : 1);
    before = PyMem_Malloc(rows ? (size_t)rows * sizeof *before : 1);
    if (row_ids == NULL || before == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < rows; i++) {
        Py_ssize_t id = PyLong_AsSsize_t(PyList_GET_ITEM(ids, i));
        if ((id == -1 && PyErr_Occurred()) || id < 0 || id >= count || row_ts[i] <= newest_ts[id]) {
            for (Py_ssize_t k = i - 1; k >= 0; k--) /* backwards: a repeated series gets its first value */
                newest_ts[row_ids[k]] = before[k];
            if (!PyErr_Occurred())
                result = Py_NewRef(Py_None);
            goto done;
        }
        row_ids[i] = id;
        before[i] = newest_ts[id];
        newest_ts[id] = row_ts[i];
        PREFETCH(PyList_GET_ITEM(series, id));
    }
    PyTypeObject *type = rows ? Py_TYPE(PyList_GET_ITEM(series, row_ids[0])) : NULL;
    const Py_ssize_t ts_offset = type != NULL ? slot_offset(type, str_head_ts) : -1;
    const Py_ssize_t values_offset = type != NULL ? slot_offset(type, str_head_values) : -1;
    if (ts_offset < 0 || values_offset < 0) {
        type = NULL; /* not slots: nothing fetched early */
    }
    Py_ssize_t i = 0; /* rows stored */
    PyObject *full = PyList_New(0);
    if (full == NULL)
        goto fail;
    for (; i < rows; i++) {
        if (type != NULL && i + APPEND_AHEAD < rows) {
            prefetch_heads(PyList_GET_ITEM(series, row_ids[i + APPEND_AHEAD]), type, ts_offset, values_offset);
        }
        Py_ssize_t id = row_ids[i];
        PyObject *target = PyList_GET_ITEM(series, id);
        PyObject *head = PyObject_GetAttr(target, str_head_ts);
        if (head == NULL)
            goto fail;
        PyObject *head_values = PyObject_GetAttr(target, str_head_values);
        if (head_values == NULL) {
            Py_DECREF(head);
            goto fail;
        }
        PyObject *stamp = PyLong_FromLongLong(row_ts[i]);
        PyObject *value = PyFloat_FromDouble(row_vs[i]);
        int failed = stamp == NULL || value == NULL;
        if (failed) {
            Py_XDECREF(stamp);
            Py_XDECREF(value);
        } else {
            /* The value first: a failure after it leaves the head's timestamps as they were. */
            failed = append_one(head_values, value) < 0 || append_one(head, stamp) < 0;
        }
        Py_ssize_t length = failed ? -1 : PyObject_Size(head);
        Py_DECREF(head_values);
        Py_DECREF(head);
        if (length < 0)
            goto fail;
        if (length >= seal_at && PyList_Append(full, target) < 0) {
            i++; /* stored */
            goto fail;
        }
    }
    result = full;
    goto done;
fail:
    Py_XDECREF(full);
    for (Py_ssize_t k = rows - 1; k >= i; k--) /* newest as the heads are: the rows not stored undone */
        newest_ts[row_ids[k]] = before[k];
done:
    PyMem_Free(row_ids);
    PyMem_Free(before);
    PyBuffer_Release(&newest);
    PyBuffer_Release(&ts);
    PyBuffer_Release(&vs);
    return result;
}

static PyMethodDef methods[] = {
    {"append_next", (PyCFunction)(void (*)(void))append_next, METH_FASTCALL,
     "append_next(series, newest, ids, timestamps, values, seal_at) -> list | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_memory_head", "The in-memory backend's batch append in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__memory_head(void)
{
    str_head_ts = PyUnicode_InternFromString("head_ts");
    str_head_values = PyUnicode_InternFromString("head_values");
    str_append = PyUnicode_InternFromString("append");
    if (str_head_ts == NULL || str_head_values == NULL || str_append == NULL)
        return NULL;
    return PyModule_Create(&module);
}
