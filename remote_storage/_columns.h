/* Helpers shared by the C extensions: unsigned varints and 1-D columns of 8-byte items.
 * Included by remote_storage/_xor.c and remote_storage/protocol/wire/_wire.c; every
 * function is static, so each extension carries its own copy of what it uses. */
#ifndef REMOTE_STORAGE_COLUMNS_H
#define REMOTE_STORAGE_COLUMNS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline Py_ssize_t
uvarint_size(uint64_t value)
{
    Py_ssize_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        size++;
    }
    return size;
}

static inline unsigned char *
put_uvarint(unsigned char *out, uint64_t value)
{
    while (value >= 0x80) {
        *out++ = (unsigned char)((value & 0x7F) | 0x80);
        value >>= 7;
    }
    *out++ = (unsigned char)value;
    return out;
}

/* The 64 bits of an item of a column (int64 or float64) at p, which need not be
 * aligned: values are never touched as floats, so no NaN is ever quieted. */
static inline uint64_t
load_u64(const char *p)
{
    uint64_t bits;
    memcpy(&bits, p, sizeof bits);
    return bits;
}

/* -- columns: 1-D buffers of 8-byte items ------------------------------------------- */

typedef struct {
    Py_buffer view;
    const char *base;
    Py_ssize_t stride;
    Py_ssize_t len;
} column;

/* Whether a struct-module format names one native int64 ('q') or float64 ('d') item. */
static int
format_is(const char *format, char kind)
{
    if (format == NULL) {
        return 0; /* plain bytes */
    }
    if (*format == '@' || *format == '=' || *format == (PY_LITTLE_ENDIAN ? '<' : '>')) {
        format++;
    }
    if (format[0] == '\0' || format[1] != '\0') {
        return 0;
    }
    if (kind == 'q') {
        return format[0] == 'q' || format[0] == 'l'; /* 'l': the item size is checked to be 8 */
    }
    return format[0] == 'd';
}

/* Borrow obj's memory as a column of int64 (kind 'q') or float64 (kind 'd').
 * Strided memoryviews (slices with a step) are accepted as they are. */
static int
column_get(PyObject *obj, column *col, char kind, const char *what)
{
    if (PyObject_GetBuffer(obj, &col->view, PyBUF_RECORDS_RO) < 0) {
        return -1;
    }
    const Py_buffer *view = &col->view;
    if (view->ndim != 1 || view->itemsize != 8 || !format_is(view->format, kind)) {
        PyErr_Format(PyExc_TypeError, "%s must be a one-dimensional buffer of %s, such as array('%c')", what,
                     kind == 'q' ? "int64" : "float64", kind);
        PyBuffer_Release(&col->view);
        return -1;
    }
    col->base = (const char *)view->buf;
    col->len = view->shape[0];
    col->stride = view->strides[0];
    return 0;
}

static inline uint64_t
column_item(const column *col, Py_ssize_t i)
{
    return load_u64(col->base + i * col->stride);
}

/* The (timestamps, values) arguments of function as an int64 and a float64
 * column; on success the caller releases both with columns_release. */
static int
columns_get(const char *function, PyObject *const *args, Py_ssize_t nargs, column *ts, column *vs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes 2 positional arguments (%zd given)", function, nargs);
        return -1;
    }
    if (column_get(args[0], ts, 'q', "timestamps") < 0) {
        return -1;
    }
    if (column_get(args[1], vs, 'd', "values") < 0) {
        PyBuffer_Release(&ts->view);
        return -1;
    }
    return 0;
}

static void
columns_release(column *ts, column *vs)
{
    PyBuffer_Release(&ts->view);
    PyBuffer_Release(&vs->view);
}

#endif /* REMOTE_STORAGE_COLUMNS_H */
