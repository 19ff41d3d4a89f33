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

/* The labels of an entry: contiguous field-1 records at the start of buf[i:stop].
 * Returns the end of the labels, or -1 to refuse the body. */
static Py_ssize_t
labels_end(const unsigned char *buf, Py_ssize_t i, Py_ssize_t stop)
{
    while (i < stop && buf[i] == TAG_LABEL) {
        Py_ssize_t j = i + 1;
        uint64_t size;
        if (read_varint(buf, &j, stop, LENGTH_MAX_SHIFT, &size) != VARINT_OK || size > (uint64_t)(stop - j)) {
            return -1;
        }
        i = j + (Py_ssize_t)size;
    }
    return i;
}

/* Read the Sample record at buf[*pos] (the record must end by stop): its
 * timestamp and value; *pos moves past it. SCAN_REFUSED: not a simple sample. */
static scan_status
read_sample(const unsigned char *buf, Py_ssize_t *pos, Py_ssize_t stop, int64_t *timestamp_out,
            double *value_out)
{
    Py_ssize_t i = *pos;
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
    *pos = i;
    *timestamp_out = as_int64(timestamp);
    *value_out = value;
    return SCAN_DONE;
}

/* Scan one TimeSeries entry, buf[i:stop]. */
static scan_status
scan_entry(const unsigned char *buf, Py_ssize_t i, Py_ssize_t stop, PyObject *series)
{
    const Py_ssize_t start = i;
    i = labels_end(buf, i, stop);
    if (i < 0) {
        return SCAN_REFUSED;
    }
    PyObject *timestamps, *values;
    if (entry_for(series, buf + start, i - start, &timestamps, &values) < 0) {
        return SCAN_ERROR;
    }
    while (i < stop) {
        int64_t timestamp;
        double value;
        if (read_sample(buf, &i, stop, &timestamp, &value) != SCAN_DONE) {
            return SCAN_REFUSED;
        }
        if (append_new(timestamps, PyLong_FromLongLong(timestamp)) < 0 ||
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

/* The growing sample columns of columns(). */
typedef struct {
    Py_ssize_t count;
    Py_ssize_t capacity;
    int64_t *timestamps;
    double *values;
} sample_columns;

static int
columns_push(sample_columns *columns, int64_t timestamp, double value)
{
    if (columns->count == columns->capacity) {
        const Py_ssize_t capacity = columns->capacity ? 2 * columns->capacity : 1024;
        int64_t *timestamps = PyMem_Realloc(columns->timestamps, (size_t)capacity * sizeof *timestamps);
        if (timestamps == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        columns->timestamps = timestamps;
        double *values = PyMem_Realloc(columns->values, (size_t)capacity * sizeof *values);
        if (values == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        columns->values = values;
        columns->capacity = capacity;
    }
    columns->timestamps[columns->count] = timestamp;
    columns->values[columns->count] = value;
    columns->count += 1;
    return 0;
}

typedef struct interner interner;

/* Where each row's key is in the body, and its hash, for Interner.columns(). */
typedef struct {
    Py_ssize_t start;
    Py_ssize_t size;
    Py_hash_t hash;
} key_ref;

typedef struct {
    Py_ssize_t count;
    Py_ssize_t capacity;
    key_ref *refs;
} key_refs;

static int interner_note(interner *self, key_refs *refs, const unsigned char *buf, Py_ssize_t start,
                         Py_ssize_t size);

/* scan_body's twin for columns(): every entry must hold exactly one sample. With an
 * interner, each row's key is noted in refs instead of listed in keys. */
static scan_status
scan_columns_body(const unsigned char *buf, Py_ssize_t end, PyObject *keys, sample_columns *columns,
                  PyObject *metadata, interner *numbering, key_refs *refs)
{
    Py_ssize_t i = 0;
    while (i < end) {
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
            Py_ssize_t j = labels_end(buf, i, stop);
            if (j < 0 || j >= stop) {
                return SCAN_REFUSED; /* malformed, or no sample: not for the columns */
            }
            const Py_ssize_t key_end = j;
            int64_t timestamp;
            double value;
            if (read_sample(buf, &j, stop, &timestamp, &value) != SCAN_DONE || j != stop) {
                return SCAN_REFUSED; /* not one simple sample */
            }
            const int keyed = numbering != NULL
                ? interner_note(numbering, refs, buf, i, key_end - i)
                : append_new(keys, PyBytes_FromStringAndSize((const char *)buf + i, key_end - i));
            if (keyed < 0 || columns_push(columns, timestamp, value) < 0) {
                return SCAN_ERROR;
            }
        }
        else {
            return SCAN_REFUSED;
        }
        i = stop;
    }
    return SCAN_DONE;
}

PyDoc_STRVAR(columns_doc,
"columns(buf, /)\n"
"--\n"
"\n"
"Scan a prometheus.WriteRequest body whose every entry holds one sample.\n"
"\n"
"Return (keys, timestamps, values, metadata): keys lists each entry's\n"
"encoded label bytes in order, timestamps and values are the entries'\n"
"samples packed as native int64 and float64, metadata lists the raw metadata\n"
"records. Return None when the body is not of that shape.");

static PyObject *
columns(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    sample_columns found = {0, 0, NULL, NULL};
    PyObject *result = NULL;
    PyObject *keys = PyList_New(0);
    PyObject *metadata = keys != NULL ? PyList_New(0) : NULL;
    if (metadata != NULL) {
        switch (scan_columns_body((const unsigned char *)view.buf, view.len, keys, &found, metadata, NULL, NULL)) {
        case SCAN_DONE: {
            const Py_ssize_t size = found.count * 8;
            PyObject *timestamps = PyBytes_FromStringAndSize((const char *)found.timestamps, size);
            PyObject *values = timestamps != NULL
                ? PyBytes_FromStringAndSize((const char *)found.values, size) : NULL;
            if (values != NULL) {
                result = PyTuple_Pack(4, keys, timestamps, values, metadata);
            }
            Py_XDECREF(timestamps);
            Py_XDECREF(values);
            break;
        }
        case SCAN_REFUSED:
            result = Py_NewRef(Py_None);
            break;
        case SCAN_ERROR:
            break;
        }
    }
    PyMem_Free(found.timestamps);
    PyMem_Free(found.values);
    Py_XDECREF(keys);
    Py_XDECREF(metadata);
    PyBuffer_Release(&view);
    return result;
}

/* ---- Interner: encoded label bytes -> number, without a bytes object per known key ----
 *
 * An open-addressing table (linear probing, at most half full) of the keys, each
 * copied into its own block, hashed with the interpreter's keyed hash for bytes (the
 * one dict uses, so crafted keys cannot pile up in one probe sequence). Numbers are
 * positive: 0 in a columns() answer means "not known". An Interner belongs to one
 * thread (the decode process' only one): nothing in it is locked. */

typedef struct {
    Py_hash_t hash;
    unsigned char *key; /* NULL: empty slot */
    Py_ssize_t size;
    long long number;
} interner_slot;

struct interner {
    PyObject_HEAD
    interner_slot *slots;
    Py_ssize_t mask; /* slots - 1, a power of two minus one */
    Py_ssize_t used;
};

#define INTERNER_FIRST_SLOTS 1024

static Py_hash_t
hash_key(const unsigned char *key, Py_ssize_t size)
{
#if PY_VERSION_HEX >= 0x030E0000
    return Py_HashBuffer(key, size);
#else
    return _Py_HashBytes(key, size);
#endif
}

/* The slot of key: the one holding it, or the empty one where it would go. */
static interner_slot *
interner_find(interner *self, Py_hash_t hash, const unsigned char *key, Py_ssize_t size)
{
    Py_ssize_t i = (Py_ssize_t)((size_t)hash & (size_t)self->mask);
    for (;;) {
        interner_slot *slot = &self->slots[i];
        if (slot->key == NULL ||
            (slot->hash == hash && slot->size == size && memcmp(slot->key, key, (size_t)size) == 0)) {
            return slot;
        }
        i = (i + 1) & self->mask;
    }
}

static void
interner_free_keys(interner *self)
{
    for (Py_ssize_t i = 0; self->slots != NULL && i <= self->mask; i++) {
        PyMem_Free(self->slots[i].key);
    }
}

static int
interner_reset(interner *self, Py_ssize_t slots)
{
    interner_slot *fresh = PyMem_Calloc((size_t)slots, sizeof *fresh);
    if (fresh == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    interner_free_keys(self);
    PyMem_Free(self->slots);
    self->slots = fresh;
    self->mask = slots - 1;
    self->used = 0;
    return 0;
}

static int
interner_grow(interner *self)
{
    const Py_ssize_t slots = 2 * (self->mask + 1);
    interner_slot *fresh = PyMem_Calloc((size_t)slots, sizeof *fresh);
    if (fresh == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    interner_slot *old = self->slots;
    const Py_ssize_t old_slots = self->mask + 1;
    self->slots = fresh;
    self->mask = slots - 1;
    for (Py_ssize_t i = 0; i < old_slots; i++) {
        if (old[i].key != NULL) {
            *interner_find(self, old[i].hash, old[i].key, old[i].size) = old[i];
        }
    }
    PyMem_Free(old);
    return 0;
}

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)0)
#endif

/* Rows looked up ahead of the one at hand: their keys' memory is fetched meanwhile. */
#define LOOKUP_AHEAD 16

/* Note a row's key while scanning; its slot starts coming into the cache. */
static int
interner_note(interner *self, key_refs *refs, const unsigned char *buf, Py_ssize_t start, Py_ssize_t size)
{
    if (refs->count == refs->capacity) {
        const Py_ssize_t capacity = refs->capacity ? 2 * refs->capacity : 1024;
        key_ref *grown = PyMem_Realloc(refs->refs, (size_t)capacity * sizeof *grown);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        refs->refs = grown;
        refs->capacity = capacity;
    }
    const Py_hash_t hash = hash_key(buf + start, size);
    PREFETCH(&self->slots[(size_t)hash & (size_t)self->mask]);
    refs->refs[refs->count++] = (key_ref){start, size, hash};
    return 0;
}

/* Each noted row's number into out (0: not known), and (row, key bytes) on missing for those. */
static int
interner_lookup(interner *self, const unsigned char *buf, const key_refs *refs, long long *out,
                PyObject *missing)
{
    const key_ref *ref = refs->refs;
    for (Py_ssize_t row = 0; row < refs->count; row++) {
        if (row + LOOKUP_AHEAD < refs->count) {
            const interner_slot *ahead = &self->slots[(size_t)ref[row + LOOKUP_AHEAD].hash & (size_t)self->mask];
            if (ahead->key != NULL) {
                PREFETCH(ahead->key);
            }
        }
        const interner_slot *slot = interner_find(self, ref[row].hash, buf + ref[row].start, ref[row].size);
        out[row] = slot->key != NULL ? slot->number : 0;
        if (slot->key == NULL &&
            append_new(missing, Py_BuildValue("(ny#)", row, (const char *)buf + ref[row].start, ref[row].size)) < 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
interner_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Interner() takes no arguments");
        return NULL;
    }
    interner *self = (interner *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->slots = NULL;
    if (interner_reset(self, INTERNER_FIRST_SLOTS) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
interner_dealloc(interner *self)
{
    PyTypeObject *type = Py_TYPE(self);
    interner_free_keys(self);
    PyMem_Free(self->slots);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

PyDoc_STRVAR(interner_columns_doc,
"columns(buf, /)\n"
"--\n"
"\n"
"columns() of the module, with each row's key looked up instead of listed.\n"
"\n"
"Return (numbers, missing, timestamps, values, metadata): numbers packs one\n"
"native int64 per row, the key's number or 0 when the key is not known;\n"
"missing lists (row, key bytes) for each row whose number is 0. Return None\n"
"when the body is not of the shape columns() takes.");

static PyObject *
interner_columns(interner *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    sample_columns found = {0, 0, NULL, NULL};
    key_refs refs = {0, 0, NULL};
    PyObject *result = NULL;
    PyObject *missing = PyList_New(0);
    PyObject *metadata = missing != NULL ? PyList_New(0) : NULL;
    if (metadata != NULL) {
        const unsigned char *buf = (const unsigned char *)view.buf;
        switch (scan_columns_body(buf, view.len, NULL, &found, metadata, self, &refs)) {
        case SCAN_DONE: {
            const Py_ssize_t size = found.count * 8;
            PyObject *packed = PyBytes_FromStringAndSize(NULL, size);
            if (packed != NULL && interner_lookup(self, buf, &refs, (long long *)PyBytes_AS_STRING(packed), missing) < 0) {
                Py_CLEAR(packed);
            }
            PyObject *timestamps = packed != NULL
                ? PyBytes_FromStringAndSize((const char *)found.timestamps, size) : NULL;
            PyObject *values = timestamps != NULL
                ? PyBytes_FromStringAndSize((const char *)found.values, size) : NULL;
            if (values != NULL) {
                result = PyTuple_Pack(5, packed, missing, timestamps, values, metadata);
            }
            Py_XDECREF(packed);
            Py_XDECREF(timestamps);
            Py_XDECREF(values);
            break;
        }
        case SCAN_REFUSED:
            result = Py_NewRef(Py_None);
            break;
        case SCAN_ERROR:
            break;
        }
    }
    PyMem_Free(found.timestamps);
    PyMem_Free(found.values);
    PyMem_Free(refs.refs);
    Py_XDECREF(missing);
    Py_XDECREF(metadata);
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(interner_add_doc,
"add(key, number, /)\n"
"--\n"
"\n"
"Give the key (bytes) the number (a positive int), replacing any it had.");

static PyObject *
interner_add(interner *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "add takes a key (bytes) and a number");
        return NULL;
    }
    const long long number = PyLong_AsLongLong(args[1]);
    if (number == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (number <= 0) {
        PyErr_SetString(PyExc_ValueError, "numbers are positive");
        return NULL;
    }
    if (2 * (self->used + 1) > self->mask + 1 && interner_grow(self) < 0) {
        return NULL;
    }
    const unsigned char *key = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    const Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    const Py_hash_t hash = hash_key(key, size);
    interner_slot *slot = interner_find(self, hash, key, size);
    if (slot->key == NULL) {
        unsigned char *copy = PyMem_Malloc(size ? (size_t)size : 1);
        if (copy == NULL) {
            return PyErr_NoMemory();
        }
        memcpy(copy, key, (size_t)size);
        slot->hash = hash;
        slot->key = copy;
        slot->size = size;
        self->used += 1;
    }
    slot->number = number;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(interner_clear_doc,
"clear()\n"
"--\n"
"\n"
"Forget every key.");

static PyObject *
interner_clear(interner *self, PyObject *Py_UNUSED(ignored))
{
    if (interner_reset(self, INTERNER_FIRST_SLOTS) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static Py_ssize_t
interner_length(interner *self)
{
    return self->used;
}

static PyMethodDef interner_methods[] = {
    {"columns", (PyCFunction)interner_columns, METH_O, interner_columns_doc},
    {"add", (PyCFunction)(void (*)(void))interner_add, METH_FASTCALL, interner_add_doc},
    {"clear", (PyCFunction)interner_clear, METH_NOARGS, interner_clear_doc},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot interner_slots[] = {
    {Py_tp_new, interner_new},
    {Py_tp_dealloc, interner_dealloc},
    {Py_tp_methods, interner_methods},
    {Py_sq_length, interner_length},
    {Py_mp_length, interner_length},
    {Py_tp_doc, "Interner()\n--\n\nNumbers of encoded label sets, kept in C (see columns, add, clear)."},
    {0, NULL},
};

static PyType_Spec interner_spec = {
    .name = "remote_storage.protocol.wire._v1scan.Interner",
    .basicsize = sizeof(interner),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = interner_slots,
};

static int
v1scan_exec(PyObject *module)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &interner_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    const int rc = PyModule_AddObjectRef(module, "Interner", type);
    Py_DECREF(type);
    return rc;
}

static PyMethodDef v1scan_methods[] = {
    {"scan", scan, METH_O, scan_doc},
    {"columns", columns, METH_O, columns_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot v1scan_slots[] = {
    {Py_mod_exec, v1scan_exec},
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
    .m_name = "remote_storage.protocol.wire._v1scan",
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
