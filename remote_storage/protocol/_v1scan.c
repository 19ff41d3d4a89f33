/* The remote write 1.0 scanner of v1_scan.py, in C.
 *
 * scan(buf) -> (series, metadata) or None. series maps the encoded label
 * bytes of each TimeSeries entry to (timestamps, values), in first-seen
 * order; metadata lists the raw MetricMetadata records. None means the body
 * is not of the simple shape (or is malformed): the caller decodes it with
 * the protobuf runtime. This refuses exactly what v1_scan._scan refuses,
 * including the truncated bodies that end there in IndexError; the tests in
 * tests/protocol/test_v1_scan.py run both on valid and damaged bodies.
 *
 * The body is untrusted network data: every byte read is checked against
 * the end of the record that holds it. Where the Python version may read on
 * past the end of a record, it always ends in None (the record would
 * overrun), so refusing at the record's end gives the same answer.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* Top-level WriteRequest field tags (field << 3 | wire type 2). */
#define TAG_TIMESERIES 0x0A
#define TAG_METADATA 0x1A
/* TimeSeries field tags. */
#define TAG_LABEL 0x0A
#define TAG_SAMPLE 0x12
/* Sample field tags: value (64-bit double), timestamp (varint). */
#define TAG_VALUE 0x09
#define TAG_TIMESTAMP 0x10

/* Length varints have at most 6 bytes (shifts 0..35), as in v1_scan.py. */
#define LENGTH_MAX_SHIFT 35
/* Timestamp varints have at most 10 bytes (shifts 0..63). */
#define TIMESTAMP_MAX_SHIFT 63

typedef enum { SCAN_ERROR = -1, SCAN_REFUSED = 0, SCAN_DONE = 1 } scan_status;

typedef enum { VARINT_BAD = 0, VARINT_OK = 1, VARINT_WIDE = 2 } varint_status;

/* Read a base-128 varint starting at buf[*pos], using only bytes before
 * limit, of at most max_shift / 7 + 1 bytes. VARINT_OK: the value is stored
 * and *pos moved past it. VARINT_WIDE: the same, but the value is 2**64 or
 * more (only with max_shift 63; v1_scan.py refuses such a timestamp only if
 * no later one in the sample replaces it). VARINT_BAD: refuse the body. */
static inline varint_status
read_varint(const unsigned char *buf, Py_ssize_t *pos, Py_ssize_t limit, int max_shift, uint64_t *out)
{
    Py_ssize_t i = *pos;
    uint64_t value = 0;
    int wide = 0;
    for (int shift = 0;; shift += 7) {
        if (i >= limit) {
            return VARINT_BAD;
        }
        const unsigned char byte = buf[i++];
        if (shift == 63 && (byte & 0x7F) > 1) {
            wide = 1; /* bits at 2**64 and above, which uint64_t cannot hold */
        }
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            break;
        }
        if (shift == max_shift) {
            return VARINT_BAD;
        }
    }
    *pos = i;
    *out = value;
    return wide ? VARINT_WIDE : VARINT_OK;
}

/* A little-endian IEEE 754 double, bit for bit (NaN payloads included). */
static inline double
read_double_le(const unsigned char *p)
{
    double value;
#if PY_LITTLE_ENDIAN
    memcpy(&value, p, sizeof value);
#else
    unsigned char swapped[8];
    for (int k = 0; k < 8; k++) {
        swapped[k] = p[7 - k];
    }
    memcpy(&value, swapped, sizeof value);
#endif
    return value;
}

/* The varint's two's complement reading as int64 (no implementation-defined cast). */
static inline int64_t
as_int64(uint64_t u)
{
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

static int
append_new(PyObject *list, PyObject *item)
{
    if (item == NULL) {
        return -1;
    }
    const int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

/* The (timestamps, values) lists of a key, created the first time it is seen.
 * Returns borrowed references (the dict holds them), or -1 on error. */
static int
entry_for(PyObject *series, const unsigned char *key, Py_ssize_t size, PyObject **timestamps,
          PyObject **values)
{
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)key, size);
    if (bytes == NULL) {
        return -1;
    }
    PyObject *entry = PyDict_GetItemWithError(series, bytes); /* borrowed */
    if (entry == NULL) {
        if (PyErr_Occurred()) {
            Py_DECREF(bytes);
            return -1;
        }
        PyObject *new_timestamps = PyList_New(0);
        PyObject *new_values = new_timestamps != NULL ? PyList_New(0) : NULL;
        entry = new_values != NULL ? PyTuple_Pack(2, new_timestamps, new_values) : NULL;
        Py_XDECREF(new_timestamps);
        Py_XDECREF(new_values);
        if (entry == NULL || PyDict_SetItem(series, bytes, entry) < 0) {
            Py_XDECREF(entry);
            Py_DECREF(bytes);
            return -1;
        }
        Py_DECREF(entry); /* the dict keeps it */
    }
    Py_DECREF(bytes);
    *timestamps = PyTuple_GET_ITEM(entry, 0);
    *values = PyTuple_GET_ITEM(entry, 1);
    return 0;
}

/* Scan one TimeSeries entry, buf[i:stop]. */
static scan_status
scan_entry(const unsigned char *buf, Py_ssize_t i, Py_ssize_t stop, PyObject *series)
{
    /* labels: contiguous field-1 records at the start of the entry */
    const Py_ssize_t start = i;
    while (i < stop && buf[i] == TAG_LABEL) {
        Py_ssize_t j = i + 1;
        uint64_t size;
        if (read_varint(buf, &j, stop, LENGTH_MAX_SHIFT, &size) != VARINT_OK || size > (uint64_t)(stop - j)) {
            return SCAN_REFUSED;
        }
        i = j + (Py_ssize_t)size;
    }
    PyObject *timestamps, *values;
    if (entry_for(series, buf + start, i - start, &timestamps, &values) < 0) {
        return SCAN_ERROR;
    }
    /* samples */
    while (i < stop) {
        if (buf[i] != TAG_SAMPLE || stop - i < 2 || (buf[i + 1] & 0x80)) {
            return SCAN_REFUSED; /* a sample is at most 20 bytes: a one-byte length */
        }
        const Py_ssize_t size = buf[i + 1];
        i += 2;
        if (size > stop - i) {
            return SCAN_REFUSED;
        }
        const Py_ssize_t sample_end = i + size;
        double value = 0.0;
        uint64_t timestamp = 0;
        varint_status timestamp_status = VARINT_OK;
        while (i < sample_end) {
            const unsigned char field = buf[i];
            if (field == TAG_VALUE) {
                if (sample_end - i < 9) {
                    return SCAN_REFUSED;
                }
                value = read_double_le(buf + i + 1);
                i += 9;
            }
            else if (field == TAG_TIMESTAMP) {
                i += 1;
                timestamp_status = read_varint(buf, &i, sample_end, TIMESTAMP_MAX_SHIFT, &timestamp);
                if (timestamp_status == VARINT_BAD) {
                    return SCAN_REFUSED;
                }
            }
            else {
                return SCAN_REFUSED;
            }
        }
        if (timestamp_status == VARINT_WIDE) {
            return SCAN_REFUSED;
        }
        if (append_new(timestamps, PyLong_FromLongLong(as_int64(timestamp))) < 0 ||
            append_new(values, PyFloat_FromDouble(value)) < 0) {
            return SCAN_ERROR;
        }
    }
    return SCAN_DONE;
}

static scan_status
scan_body(const unsigned char *buf, Py_ssize_t end, PyObject *series, PyObject *metadata)
{
    Py_ssize_t i = 0;
    while (i < end) {
        /* a tag, then the length of a length-delimited field */
        const unsigned char tag = buf[i];
        uint64_t length;
        i += 1;
        if (read_varint(buf, &i, end, LENGTH_MAX_SHIFT, &length) != VARINT_OK || length > (uint64_t)(end - i)) {
            return SCAN_REFUSED;
        }
        const Py_ssize_t stop = i + (Py_ssize_t)length;
        if (tag == TAG_METADATA) {
            if (append_new(metadata, PyBytes_FromStringAndSize((const char *)buf + i, stop - i)) < 0) {
                return SCAN_ERROR;
            }
        }
        else if (tag == TAG_TIMESERIES) {
            const scan_status status = scan_entry(buf, i, stop, series);
            if (status != SCAN_DONE) {
                return status;
            }
        }
        else {
            return SCAN_REFUSED;
        }
        i = stop;
    }
    return SCAN_DONE;
}

PyDoc_STRVAR(scan_doc,
"scan(buf, /)\n"
"--\n"
"\n"
"Scan a prometheus.WriteRequest body (any bytes-like object).\n"
"\n"
"Return (series, metadata): series maps each entry's encoded label bytes to\n"
"(timestamps, values) in first-seen order, metadata lists the raw metadata\n"
"records. Return None when the body is not of the simple shape.");

static PyObject *
scan(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    PyObject *series = PyDict_New();
    PyObject *metadata = series != NULL ? PyList_New(0) : NULL;
    if (metadata != NULL) {
        switch (scan_body((const unsigned char *)view.buf, view.len, series, metadata)) {
        case SCAN_DONE:
            result = PyTuple_Pack(2, series, metadata);
            break;
        case SCAN_REFUSED:
            result = Py_NewRef(Py_None);
            break;
        case SCAN_ERROR:
            break;
        }
    }
    Py_XDECREF(series);
    Py_XDECREF(metadata);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef v1scan_methods[] = {
    {"scan", scan, METH_O, scan_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot v1scan_slots[] = {
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef v1scan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "remote_storage.protocol._v1scan",
    .m_doc = "The remote write 1.0 scanner of remote_storage.protocol.v1_scan, in C.",
    .m_size = 0,
    .m_methods = v1scan_methods,
    .m_slots = v1scan_slots,
};

PyMODINIT_FUNC
PyInit__v1scan(void)
{
    return PyModuleDef_Init(&v1scan_module);
}
