/* The protobuf records of remote read and the frames of streamed responses, in C.
 *
 *   encode_samples(timestamps, values) -> bytes
 *   encode_labels(labels) -> bytes
 *   encode_chunk_records(chunks) -> bytes
 *   encode_series_frames(query_index, label_records, chunks, max_frame_bytes) -> (bytes, int)
 *   encode_joined_labels(data) -> bytes or None
 *
 * The C twin of the wire layer (records.py and frames.py next to this file):
 * with the generated pb modules and _v1scan.c, the only code that knows
 * protobuf tags and record layouts. Each function has a pure-Python twin
 * with the same results for every input; tests/test_codec.py runs both side
 * by side. remote_storage.native imports this module; nothing else does.
 *
 * None from encode_joined_labels means "not here": the Python twin then
 * raises its own, precise error, so the messages exist in one place only.
 *
 * Timestamps and values come as buffers of int64 ('q', or 'l' where long has
 * 64 bits) and float64 ('d'), such as array('q')/array('d') or memoryviews of
 * them; values are only ever moved as 64-bit patterns, so NaN payloads (the
 * stale marker among them) and -0.0 survive bit for bit.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "../../_columns.h"

/* protobuf tags: Label.name, Label.value, TimeSeries.labels, TimeSeries.samples,
 * Sample.value (64-bit), Sample.timestamp (varint), ChunkedSeries.chunks,
 * Chunk.min_time_ms, Chunk.max_time_ms, Chunk.type, Chunk.data. */
#define TAG_LABEL_NAME 0x0A
#define TAG_LABEL_VALUE 0x12
#define TAG_LABELS 0x0A
#define TAG_SAMPLES 0x12
#define TAG_SAMPLE_VALUE 0x09
#define TAG_SAMPLE_TIMESTAMP 0x10
#define TAG_CHUNKS 0x12
#define TAG_CHUNK_MIN_TIME 0x08
#define TAG_CHUNK_MAX_TIME 0x10
#define TAG_CHUNK_TYPE 0x18
#define TAG_CHUNK_DATA 0x22
/* Chunk.Encoding.XOR */
#define CHUNK_TYPE_XOR 1

typedef struct {
    PyObject *min_time; /* attribute names of a chunk */
    PyObject *max_time;
    PyObject *data;
    PyObject *crc32c; /* crc32c.crc32c */
} wire_state;

/* -- helpers ---------------------------------------------------------------------- */


/* -- protobuf records --------------------------------------------------------------- */

/* One Sample record (TimeSeries field 2). proto3 leaves out fields at their
 * default, judged by bits: value 0.0 (but not -0.0) and timestamp 0. */
static inline Py_ssize_t
sample_body_size(uint64_t t, uint64_t bits)
{
    return (bits ? 9 : 0) + (t ? 1 + uvarint_size(t) : 0); /* at most 20: a one-byte length */
}

PyDoc_STRVAR(encode_samples_doc,
"encode_samples(timestamps, values, /)\n"
"--\n"
"\n"
"The repeated Sample records (field 2) of a prometheus.TimeSeries, byte for\n"
"byte as protobuf serializes them, from buffers of int64 and float64.");

static PyObject *
encode_samples(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    column ts, vs;
    if (columns_get("encode_samples", args, nargs, &ts, &vs) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t n = ts.len;
    if (n != vs.len) {
        PyErr_Format(PyExc_ValueError, "%zd timestamps but %zd values: they must pair up", n, vs.len);
        goto done;
    }
    Py_ssize_t size = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        size += 2 + sample_body_size(column_item(&ts, i), column_item(&vs, i));
    }
    result = PyBytes_FromStringAndSize(NULL, size);
    if (result == NULL) {
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint64_t t = column_item(&ts, i);
        const uint64_t bits = column_item(&vs, i);
        *out++ = TAG_SAMPLES;
        *out++ = (unsigned char)sample_body_size(t, bits);
        if (bits) {
            *out++ = TAG_SAMPLE_VALUE;
            for (int k = 0; k < 8; k++) { /* little-endian, whatever the host */
                *out++ = (unsigned char)(bits >> (8 * k));
            }
        }
        if (t) {
            *out++ = TAG_SAMPLE_TIMESTAMP;
            out = put_uvarint(out, t); /* negative: ten bytes of two's complement */
        }
    }
done:
    columns_release(&ts, &vs);
    return result;
}

/* The UTF-8 of a label's name and value. */
typedef struct {
    const char *name;
    Py_ssize_t name_len;
    const char *value;
    Py_ssize_t value_len;
} label_text;

static inline Py_ssize_t
string_field_size(Py_ssize_t len)
{
    return len ? 1 + uvarint_size((uint64_t)len) + len : 0; /* proto3: "" is left out */
}

static inline Py_ssize_t
label_body_size(const label_text *label)
{
    return string_field_size(label->name_len) + string_field_size(label->value_len);
}

static int
label_get(PyObject *pair, label_text *label)
{
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_TypeError, "labels must be (name, value) tuples of str");
        return -1;
    }
    label->name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pair, 0), &label->name_len);
    if (label->name == NULL) {
        return -1;
    }
    label->value = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pair, 1), &label->value_len);
    return label->value == NULL ? -1 : 0;
}

static inline unsigned char *
put_string_field(unsigned char *out, unsigned char tag, const char *text, Py_ssize_t len)
{
    if (len) {
        *out++ = tag;
        out = put_uvarint(out, (uint64_t)len);
        memcpy(out, text, (size_t)len);
        out += len;
    }
    return out;
}

PyDoc_STRVAR(encode_labels_doc,
"encode_labels(labels, /)\n"
"--\n"
"\n"
"The repeated Label records (field 1) of a prometheus.TimeSeries or\n"
"ChunkedSeries, byte for byte as protobuf serializes them, from a tuple of\n"
"(name, value) str pairs such as a Labels.");

static PyObject *
encode_labels(PyObject *Py_UNUSED(module), PyObject *arg)
{
    PyObject *pairs = PyTuple_Check(arg) ? Py_NewRef(arg) : PySequence_Tuple(arg);
    if (pairs == NULL) {
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t n = PyTuple_GET_SIZE(pairs);
    label_text small[16];
    label_text *labels = n <= 16 ? small : PyMem_Malloc((size_t)n * sizeof *labels);
    if (labels == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t size = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (label_get(PyTuple_GET_ITEM(pairs, i), &labels[i]) < 0) {
            goto done;
        }
        const Py_ssize_t body = label_body_size(&labels[i]);
        size += 1 + uvarint_size((uint64_t)body) + body;
    }
    result = PyBytes_FromStringAndSize(NULL, size);
    if (result == NULL) {
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < n; i++) {
        const label_text *label = &labels[i];
        *out++ = TAG_LABELS;
        out = put_uvarint(out, (uint64_t)label_body_size(label));
        out = put_string_field(out, TAG_LABEL_NAME, label->name, label->name_len);
        out = put_string_field(out, TAG_LABEL_VALUE, label->value, label->value_len);
    }
done:
    if (labels != small) {
        PyMem_Free(labels);
    }
    Py_DECREF(pairs); /* the tuple kept the strings whose UTF-8 was borrowed alive */
    return result;
}

/* One chunk's fields, read before anything is written. */
typedef struct {
    uint64_t min_time;
    uint64_t max_time;
    Py_buffer data;
    Py_ssize_t body_size;
} chunk_fields;

static int
int64_attribute(PyObject *obj, PyObject *name, uint64_t *out)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        return -1;
    }
    const long long number = PyLong_AsLongLong(value); /* OverflowError outside int64, as protobuf */
    Py_DECREF(value);
    if (number == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = (uint64_t)number; /* negative: ten varint bytes of two's complement */
    return 0;
}

static int
chunk_fields_get(wire_state *state, PyObject *chunk, chunk_fields *fields)
{
    if (int64_attribute(chunk, state->min_time, &fields->min_time) < 0 ||
        int64_attribute(chunk, state->max_time, &fields->max_time) < 0) {
        return -1;
    }
    PyObject *data = PyObject_GetAttr(chunk, state->data);
    if (data == NULL) {
        return -1;
    }
    const int rc = PyObject_GetBuffer(data, &fields->data, PyBUF_SIMPLE);
    Py_DECREF(data); /* the view keeps the object alive */
    if (rc < 0) {
        return -1;
    }
    const Py_ssize_t len = fields->data.len;
    /* proto3 leaves zero times and empty data out; the type (XOR) is always there */
    fields->body_size = (fields->min_time ? 1 + uvarint_size(fields->min_time) : 0) +
                        (fields->max_time ? 1 + uvarint_size(fields->max_time) : 0) + 2 +
                        (len ? 1 + uvarint_size((uint64_t)len) + len : 0);
    return 0;
}

/* The whole Chunk record: tag, length and body. */
static inline Py_ssize_t
chunk_record_size(const chunk_fields *f)
{
    return 1 + uvarint_size((uint64_t)f->body_size) + f->body_size;
}

static unsigned char *
put_chunk_record(unsigned char *out, const chunk_fields *f)
{
    *out++ = TAG_CHUNKS;
    out = put_uvarint(out, (uint64_t)f->body_size);
    if (f->min_time) {
        *out++ = TAG_CHUNK_MIN_TIME;
        out = put_uvarint(out, f->min_time);
    }
    if (f->max_time) {
        *out++ = TAG_CHUNK_MAX_TIME;
        out = put_uvarint(out, f->max_time);
    }
    *out++ = TAG_CHUNK_TYPE;
    *out++ = CHUNK_TYPE_XOR;
    if (f->data.len) {
        *out++ = TAG_CHUNK_DATA;
        out = put_uvarint(out, (uint64_t)f->data.len);
        memcpy(out, f->data.buf, (size_t)f->data.len);
        out += f->data.len;
    }
    return out;
}

PyDoc_STRVAR(encode_chunk_records_doc,
"encode_chunk_records(chunks, /)\n"
"--\n"
"\n"
"The repeated Chunk records (field 2) of a prometheus.ChunkedSeries, byte for\n"
"byte as protobuf serializes them, from a sequence of EncodedChunk (objects\n"
"with int min_time and max_time and bytes-like data), all of type XOR.");

static PyObject *
encode_chunk_records(PyObject *module, PyObject *arg)
{
    wire_state *state = PyModule_GetState(module);
    /* A tuple: the attribute reads below may run Python code, which cannot change a tuple. */
    PyObject *chunks = PySequence_Tuple(arg);
    if (chunks == NULL) {
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t n = PyTuple_GET_SIZE(chunks);
    chunk_fields small[8];
    chunk_fields *fields = n <= 8 ? small : PyMem_Malloc((size_t)n * sizeof *fields);
    Py_ssize_t held = 0; /* buffers acquired, released at the end */
    if (fields == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t size = 0;
    for (; held < n; held++) {
        if (chunk_fields_get(state, PyTuple_GET_ITEM(chunks, held), &fields[held]) < 0) {
            goto done;
        }
        size += chunk_record_size(&fields[held]);
    }
    result = PyBytes_FromStringAndSize(NULL, size);
    if (result == NULL) {
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < n; i++) {
        out = put_chunk_record(out, &fields[i]);
    }
done:
    for (Py_ssize_t i = 0; i < held; i++) {
        PyBuffer_Release(&fields[i].data);
    }
    if (fields != small) {
        PyMem_Free(fields);
    }
    Py_DECREF(chunks);
    return result;
}

/* -- stream frames ------------------------------------------------------------------ */

/* CRC-32C of a frame's message: the crc32c package's function, called on a view
 * of the bytes, so the C and the Python frame writers share one implementation
 * (hardware-accelerated where the CPU has the instruction). -1 on error. */
static int64_t
frame_checksum(wire_state *state, const unsigned char *message, Py_ssize_t len)
{
    PyObject *view = PyMemoryView_FromMemory((char *)message, len, PyBUF_READ);
    if (view == NULL) {
        return -1;
    }
    PyObject *value = PyObject_CallOneArg(state->crc32c, view);
    Py_DECREF(view);
    if (value == NULL) {
        return -1;
    }
    const unsigned long crc = PyLong_AsUnsignedLong(value);
    Py_DECREF(value);
    if (crc == (unsigned long)-1 && PyErr_Occurred()) {
        return -1;
    }
    return (int64_t)(crc & 0xFFFFFFFFu);
}

/* What a chunk is taken to add to a frame while filling it (frames.py's CHUNK_OVERHEAD). */
#define CHUNK_FRAME_OVERHEAD 32
/* ChunkedReadResponse.chunked_series and .query_index */
#define TAG_CHUNKED_SERIES 0x0A
#define TAG_QUERY_INDEX 0x10

PyDoc_STRVAR(encode_series_frames_doc,
"encode_series_frames(query_index, label_records, chunks, max_frame_bytes, /)\n"
"--\n"
"\n"
"The frames of one series of a STREAMED_XOR_CHUNKS answer, joined, and the\n"
"number of samples its chunks hold: (bytes, int). label_records are the\n"
"series' Label records (encode_labels), chunks a sequence of EncodedChunk.\n"
"Frames are cut as remote_storage.protocol.wire.frames.iter_series_frames cuts them.");

static PyObject *
encode_series_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "encode_series_frames() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    const uint64_t query_index = PyLong_AsUnsignedLongLongMask(args[0]); /* & (2**64 - 1), as protobuf */
    if (query_index == (uint64_t)-1 && PyErr_Occurred()) {
        return NULL;
    }
    const Py_ssize_t max_frame_bytes = PyLong_AsSsize_t(args[3]);
    if (max_frame_bytes == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer labels;
    if (PyObject_GetBuffer(args[1], &labels, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    wire_state *state = PyModule_GetState(module);
    PyObject *chunks = PySequence_Tuple(args[2]);
    if (chunks == NULL) {
        PyBuffer_Release(&labels);
        return NULL;
    }
    PyObject *result = NULL, *data = NULL;
    const Py_ssize_t n = PyTuple_GET_SIZE(chunks);
    chunk_fields small[8];
    chunk_fields *fields = n <= 8 ? small : PyMem_Malloc((size_t)n * sizeof *fields);
    Py_ssize_t held = 0;
    if (fields == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    long samples = 0;
    for (; held < n; held++) {
        if (chunk_fields_get(state, PyTuple_GET_ITEM(chunks, held), &fields[held]) < 0) {
            goto done;
        }
        const unsigned char *bytes = (const unsigned char *)fields[held].data.buf;
        const Py_ssize_t len = fields[held].data.len;
        samples += len >= 2 ? bytes[0] << 8 | bytes[1] : len == 1 ? bytes[0] : 0; /* the chunk's count */
    }
    const Py_ssize_t tail = query_index ? 1 + uvarint_size(query_index) : 0;
    const Py_ssize_t budget = max_frame_bytes - labels.len;
    /* First pass: the size of everything; the second writes the frames where the first cut them. */
    Py_ssize_t size = 0;
    for (Py_ssize_t start = 0, stop; start < n; start = stop) {
        Py_ssize_t used = 0, records = 0;
        for (stop = start; stop < n && (used < budget || used == 0); stop++) {
            used += fields[stop].data.len + CHUNK_FRAME_OVERHEAD;
            records += chunk_record_size(&fields[stop]);
        }
        const Py_ssize_t body = labels.len + records;
        const Py_ssize_t message = 1 + uvarint_size((uint64_t)body) + body + tail;
        size += uvarint_size((uint64_t)message) + 4 + message;
    }
    data = PyBytes_FromStringAndSize(NULL, size);
    if (data == NULL) {
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(data);
    for (Py_ssize_t start = 0, stop; start < n; start = stop) {
        Py_ssize_t used = 0, records = 0;
        for (stop = start; stop < n && (used < budget || used == 0); stop++) {
            used += fields[stop].data.len + CHUNK_FRAME_OVERHEAD;
            records += chunk_record_size(&fields[stop]);
        }
        const Py_ssize_t body = labels.len + records;
        const Py_ssize_t message_size = 1 + uvarint_size((uint64_t)body) + body + tail;
        out = put_uvarint(out, (uint64_t)message_size);
        unsigned char *checksum = out;
        unsigned char *message = out + 4;
        out = message;
        *out++ = TAG_CHUNKED_SERIES;
        out = put_uvarint(out, (uint64_t)body);
        memcpy(out, labels.buf, (size_t)labels.len);
        out += labels.len;
        for (Py_ssize_t i = start; i < stop; i++) {
            out = put_chunk_record(out, &fields[i]);
        }
        if (query_index) {
            *out++ = TAG_QUERY_INDEX;
            out = put_uvarint(out, query_index);
        }
        const int64_t crc = frame_checksum(state, message, out - message);
        if (crc < 0) {
            goto done;
        }
        checksum[0] = (unsigned char)(crc >> 24);
        checksum[1] = (unsigned char)(crc >> 16);
        checksum[2] = (unsigned char)(crc >> 8);
        checksum[3] = (unsigned char)crc;
    }
    result = Py_BuildValue("(Ol)", data, samples);
done:
    for (Py_ssize_t i = 0; i < held; i++) {
        PyBuffer_Release(&fields[i].data);
    }
    if (fields != small) {
        PyMem_Free(fields);
    }
    Py_XDECREF(data);
    Py_DECREF(chunks);
    PyBuffer_Release(&labels);
    return result;
}

PyDoc_STRVAR(encode_joined_labels_doc,
"encode_joined_labels(data, /)\n"
"--\n"
"\n"
"The Label records of a label set given as its UTF-8 names and values joined\n"
"by 0xFF bytes (name 0xFF value 0xFF name ...; empty: no labels), as\n"
"encode_labels writes them. None when the parts do not pair up.");

static PyObject *
encode_joined_labels(PyObject *Py_UNUSED(module), PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    const unsigned char *end = data + view.len;
    PyObject *result = NULL;
    /* First pass: check that the parts pair up and size the records. */
    Py_ssize_t size = 0;
    if (view.len) {
        for (const unsigned char *p = data;;) {
            const unsigned char *name_end = memchr(p, 0xFF, (size_t)(end - p));
            if (name_end == NULL) {
                result = Py_NewRef(Py_None); /* a name without its value */
                goto done;
            }
            const unsigned char *value = name_end + 1;
            const unsigned char *value_end = memchr(value, 0xFF, (size_t)(end - value));
            if (value_end == NULL) {
                value_end = end;
            }
            const Py_ssize_t body = string_field_size(name_end - p) + string_field_size(value_end - value);
            size += 1 + uvarint_size((uint64_t)body) + body;
            if (value_end == end) {
                break;
            }
            p = value_end + 1;
        }
    }
    result = PyBytes_FromStringAndSize(NULL, size);
    if (result == NULL || !view.len) {
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    for (const unsigned char *p = data;;) {
        const unsigned char *name_end = memchr(p, 0xFF, (size_t)(end - p));
        const unsigned char *value = name_end + 1;
        const unsigned char *value_end = memchr(value, 0xFF, (size_t)(end - value));
        if (value_end == NULL) {
            value_end = end;
        }
        const Py_ssize_t name_len = name_end - p, value_len = value_end - value;
        *out++ = TAG_LABELS;
        out = put_uvarint(out, (uint64_t)(string_field_size(name_len) + string_field_size(value_len)));
        out = put_string_field(out, TAG_LABEL_NAME, (const char *)p, name_len);
        out = put_string_field(out, TAG_LABEL_VALUE, (const char *)value, value_len);
        if (value_end == end) {
            break;
        }
        p = value_end + 1;
    }
done:
    PyBuffer_Release(&view);
    return result;
}
/* -- module ------------------------------------------------------------------------- */

static PyMethodDef wire_methods[] = {
    {"encode_samples", (PyCFunction)(void (*)(void))encode_samples, METH_FASTCALL, encode_samples_doc},
    {"encode_labels", encode_labels, METH_O, encode_labels_doc},
    {"encode_chunk_records", encode_chunk_records, METH_O, encode_chunk_records_doc},
    {"encode_series_frames", (PyCFunction)(void (*)(void))encode_series_frames, METH_FASTCALL,
     encode_series_frames_doc},
    {"encode_joined_labels", encode_joined_labels, METH_O, encode_joined_labels_doc},
    {NULL, NULL, 0, NULL},
};

static int
wire_exec(PyObject *module)
{
    wire_state *state = PyModule_GetState(module);
    PyObject *crc_module = PyImport_ImportModule("crc32c");
    if (crc_module == NULL) {
        return -1;
    }
    state->crc32c = PyObject_GetAttrString(crc_module, "crc32c");
    Py_DECREF(crc_module);
    state->min_time = PyUnicode_InternFromString("min_time");
    state->max_time = PyUnicode_InternFromString("max_time");
    state->data = PyUnicode_InternFromString("data");
    if (state->crc32c == NULL || state->min_time == NULL || state->max_time == NULL || state->data == NULL) {
        return -1;
    }
    return 0;
}

static int
wire_traverse(PyObject *module, visitproc visit, void *arg)
{
    wire_state *state = PyModule_GetState(module);
    Py_VISIT(state->crc32c);
    return 0;
}

static int
wire_clear(PyObject *module)
{
    wire_state *state = PyModule_GetState(module);
    Py_CLEAR(state->crc32c);
    Py_CLEAR(state->min_time);
    Py_CLEAR(state->max_time);
    Py_CLEAR(state->data);
    return 0;
}

static void
wire_free(void *module)
{
    wire_clear((PyObject *)module);
}

static PyModuleDef_Slot wire_slots[] = {
    {Py_mod_exec, wire_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef wire_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "remote_storage.protocol.wire._wire",
    .m_doc = "The remote-read protobuf records and stream frames of remote_storage, in C.",
    .m_size = sizeof(wire_state),
    .m_methods = wire_methods,
    .m_slots = wire_slots,
    .m_traverse = wire_traverse,
    .m_clear = wire_clear,
    .m_free = wire_free,
};

PyMODINIT_FUNC
PyInit__wire(void)
{
    return PyModuleDef_Init(&wire_module);
}
