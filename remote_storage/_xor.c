/* The XOR chunk codec of chunks.py, in C.
 *
 *   encode_chunk(timestamps, values) -> bytes or None
 *   pack_chunk(timestamps, values) -> bytes or None
 *   decode_chunk(data) -> (array('q'), array('d')) or None
 *
 * Each has a pure-Python twin with the same results for every input
 * (chunks.py); tests/test_codec.py runs both side by side. The protobuf
 * records around chunks are the wire layer's (protocol/wire/_wire.c).
 * remote_storage.native imports this module; nothing else does.
 *
 * None means "not here": the samples cannot be a chunk (timestamps not
 * strictly increasing, more than 65535 samples, columns of unequal length) or
 * the chunk is malformed. The Python wrappers then run the Python code, which
 * raises its own, precise error, so the messages exist in one place only.
 *
 * Timestamps and values come as buffers of int64 ('q', or 'l' where long has
 * 64 bits) and float64 ('d'), such as array('q')/array('d') or memoryviews of
 * them; values are only ever moved as 64-bit patterns, so NaN payloads (the
 * stale marker among them) and -0.0 survive bit for bit. Timestamp
 * arithmetic is done in uint64, which wraps exactly as Go's int64 does in
 * Prometheus' codec and as the Python code's final wrap to int64 does.
 *
 * Chunks handed to decode_chunk are untrusted (they may come from a database
 * file): every byte read is bounds-checked, and reads past the end see zero
 * bits, as the Python decoder's zero padding does, before the final length
 * check refuses the chunk.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "_columns.h"
#include "_xor_encode.h"

typedef struct {
    PyObject *array_type; /* array.array, for decode_chunk's results */
    PyObject *typecode_q;
    PyObject *typecode_d;
} xor_state;

/* How far back the plan looks for the start of a window, in values that are
 * not equal to the one before them. Longer windows save at most 11 bits per
 * this many values; the search costs this many steps per value. */
#define PLAN_LOOKBACK 32

/* The window plan of pack_chunk for the n >= 2 values of vs: plan[i] is the
 * window that value i starts (forced_window) or 0 where it keeps the current one.
 *
 * Each value that differs from the one before costs 2 bits plus the window's
 * width when it keeps the window, and 13 bits plus the width when it starts
 * one; a window must cover every value it carries. So the cheapest stream is
 * the cheapest cut of those values into runs, each run written with the
 * narrowest window covering it: dynamic programming over where the last run
 * starts. cost[j] is the fewest bits for the first j values, run[j] the start
 * of the last run in that answer. Ties go to the latest start, as in the
 * Python twin. -1 without memory. */
static int
plan_windows(const column *vs, Py_ssize_t n, uint16_t *plan)
{
    Py_ssize_t m = 0; /* values that differ from the one before */
    /* One block, widest items first: cost, where, run, window, zeros (lz and tz of each). */
    int64_t *cost = PyMem_Malloc((size_t)n * (sizeof(int64_t) + 2 * sizeof(int32_t) + sizeof(uint16_t) + 2));
    if (cost == NULL) {
        return -1;
    }
    int32_t *where = (int32_t *)(cost + n);
    int32_t *run = where + n;
    uint16_t *window = (uint16_t *)(run + n);
    unsigned char *zeros = (unsigned char *)(window + n);
    uint64_t v = column_item(vs, 0);
    for (Py_ssize_t i = 1; i < n; i++) {
        const uint64_t vn = column_item(vs, i);
        const uint64_t x = vn ^ v;
        v = vn;
        plan[i] = 0;
        if (x != 0) {
            const int lz = count_leading_zeros(x);
            where[m] = (int32_t)i;
            zeros[2 * m] = (unsigned char)(lz > 31 ? 31 : lz);
            zeros[2 * m + 1] = (unsigned char)count_trailing_zeros(x);
            m++;
        }
    }
    cost[0] = 0;
    for (Py_ssize_t j = 1; j <= m; j++) {
        int leading = 31, trailing = 63;
        int64_t best = INT64_MAX;
        const Py_ssize_t stop = j > PLAN_LOOKBACK ? j - PLAN_LOOKBACK : 0;
        for (Py_ssize_t i = j - 1; i >= stop; i--) {
            if (zeros[2 * i] < leading) {
                leading = zeros[2 * i];
            }
            if (zeros[2 * i + 1] < trailing) {
                trailing = zeros[2 * i + 1];
            }
            const int64_t bits = cost[i] + 11 + (int64_t)(j - i) * (66 - leading - trailing);
            if (bits < best) {
                best = bits;
                run[j] = (int32_t)i;
                window[j] = forced_window(leading, trailing);
            }
        }
        cost[j] = best;
    }
    for (Py_ssize_t j = m; j > 0; j = run[j]) {
        plan[where[run[j]]] = window[j];
    }
    PyMem_Free(cost);
    return 0;
}

PyDoc_STRVAR(encode_chunk_doc,
"encode_chunk(timestamps, values, /)\n"
"--\n"
"\n"
"Encode samples as one XOR chunk, as remote_storage.chunks.encode_chunk does.\n"
"\n"
"timestamps and values are buffers of int64 and float64. Return None when they\n"
"cannot form a chunk (lengths differ, more than 65535 samples, timestamps not\n"
"strictly increasing): the caller reports that.");

/* encode_chunk and pack_chunk: plan_windows runs when pack is set. */
static PyObject *
encode_columns(const char *function, PyObject *const *args, Py_ssize_t nargs, int pack)
{
    column ts, vs;
    if (columns_get(function, args, nargs, &ts, &vs) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    const Py_ssize_t n = ts.len;
    if (n != vs.len || n > MAX_SAMPLES) {
        result = Py_NewRef(Py_None);
    }
    else if (n == 0) {
        result = PyBytes_FromStringAndSize("\0\0", 2);
    }
    else {
        unsigned char stack[STACK_CHUNK_BYTES];
        const size_t bound = chunk_bound(n);
        unsigned char *out = bound <= sizeof stack ? stack : PyMem_Malloc(bound);
        uint16_t *plan = pack && n > 1 ? PyMem_Malloc((size_t)n * sizeof *plan) : NULL;
        if (out == NULL || (pack && n > 1 && (plan == NULL || plan_windows(&vs, n, plan) < 0))) {
            PyErr_NoMemory();
        }
        else {
            const xor_column ts_items = {ts.base, ts.stride}, vs_items = {vs.base, vs.stride};
            const Py_ssize_t size = encode_xor(&ts_items, &vs_items, n, plan, out);
            result = size < 0 ? Py_NewRef(Py_None) : PyBytes_FromStringAndSize((const char *)out, size);
        }
        if (out != stack) {
            PyMem_Free(out);
        }
        PyMem_Free(plan);
    }
    columns_release(&ts, &vs);
    return result;
}

static PyObject *
encode_chunk(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    return encode_columns("encode_chunk", args, nargs, 0);
}

PyDoc_STRVAR(pack_chunk_doc,
"pack_chunk(timestamps, values, /)\n"
"--\n"
"\n"
"Encode samples as the smallest XOR chunk, as remote_storage.chunks.pack_chunk does.\n"
"\n"
"The arguments and None are those of encode_chunk.");

static PyObject *
pack_chunk(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    return encode_columns("pack_chunk", args, nargs, 1);
}

/* -- XOR chunk decoder -------------------------------------------------------------- */

/* Bits read MSB first from data[0:size]; bits past the end read as zero. */
typedef struct {
    const unsigned char *data;
    Py_ssize_t size;
    uint64_t pos; /* in bits; may run past 8 * size, which the caller checks */
} bit_reader;

static inline unsigned char
byte_at(const bit_reader *r, uint64_t index)
{
    return index < (uint64_t)r->size ? r->data[index] : 0;
}

/* The n bits (1 <= n <= 57) at the read position, without consuming them. */
static inline uint64_t
peek_bits(const bit_reader *r, int n)
{
    const uint64_t index = r->pos >> 3;
    uint64_t word = 0;
    if (index + 8 <= (uint64_t)r->size) {
        const unsigned char *p = r->data + index;
        for (int k = 0; k < 8; k++) {
            word = (word << 8) | p[k];
        }
    }
    else {
        for (int k = 0; k < 8; k++) {
            word = (word << 8) | byte_at(r, index + (uint64_t)k);
        }
    }
    /* at least 57 bits of the word follow the bit offset, enough for n <= 57 */
    return (word << (r->pos & 7)) >> (64 - n);
}

/* Read n bits (1 <= n <= 64). */
static inline uint64_t
read_bits(bit_reader *r, int n)
{
    uint64_t value;
    if (n <= 57) {
        value = peek_bits(r, n);
    }
    else {
        value = peek_bits(r, 32) << (n - 32);
        r->pos += 32;
        value |= peek_bits(r, n - 32);
        r->pos -= 32;
    }
    r->pos += (uint64_t)n;
    return value;
}

/* Go's binary.ReadUvarint on data[*pos:size]: at most 10 bytes, the 10th at most 1. */
static int
read_uvarint(const unsigned char *data, Py_ssize_t size, Py_ssize_t *pos, uint64_t *out)
{
    uint64_t value = 0;
    Py_ssize_t i = *pos;
    for (int shift = 0; shift < 70; shift += 7) {
        if (i >= size) {
            return -1;
        }
        const unsigned char byte = data[i++];
        if (shift == 63 && byte > 1) {
            return -1;
        }
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *pos = i;
            *out = value;
            return 0;
        }
    }
    return -1; /* not reached: the 10th byte either ends the varint or fails above */
}

/* A sign-extended n-bit delta-of-delta, where the pattern 1 followed by zeros is +2**(n-1). */
static inline uint64_t
bucket_dod(uint64_t field, int n)
{
    const uint64_t half = UINT64_C(1) << (n - 1);
    return field > half ? field - (UINT64_C(1) << n) : field; /* modulo 2**64 */
}

/* Store a 64-bit item as item i of out, which need not be 8-byte aligned. */
static inline void
put_item(char *out, Py_ssize_t i, uint64_t value)
{
    memcpy(out + 8 * i, &value, sizeof value);
}

/* Decode the chunk into ts/vs (count native 64-bit items each); 0 when valid,
 * -1 when the Python decoder would raise ChunkDecodeError. */
static int
decode_xor(const unsigned char *data, Py_ssize_t size, Py_ssize_t count, char *ts, char *vs)
{
    Py_ssize_t pos = 2;
    uint64_t zigzag;
    if (read_uvarint(data, size, &pos, &zigzag) < 0) {
        return -1;
    }
    uint64_t t = (zigzag >> 1) ^ (UINT64_C(0) - (zigzag & 1));
    if (size - pos < 8) {
        return -1;
    }
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) {
        v = (v << 8) | data[pos + k];
    }
    pos += 8;
    put_item(ts, 0, t);
    put_item(vs, 0, v);
    if (count == 1) {
        return 0;
    }
    uint64_t delta;
    if (read_uvarint(data, size, &pos, &delta) < 0) {
        return -1;
    }
    const uint64_t end = 8 * (uint64_t)size;
    bit_reader r = {data, size, 8 * (uint64_t)pos};
    int trailing = 0; /* a window reused before any "11" is 64 bits wide, as in Prometheus */
    int sig = 64;
    for (Py_ssize_t i = 1; i < count; i++) {
        if (r.pos > end) {
            return -1; /* ran off the end: the final check would refuse it anyway */
        }
        if (i > 1) {
            const uint64_t code = peek_bits(&r, 4);
            if (code < 0x8) {
                r.pos += 1;
            }
            else if (code < 0xC) {
                r.pos += 2;
                delta += bucket_dod(read_bits(&r, 14), 14);
            }
            else if (code < 0xE) {
                r.pos += 3;
                delta += bucket_dod(read_bits(&r, 17), 17);
            }
            else if (code == 0xE) {
                r.pos += 4;
                delta += bucket_dod(read_bits(&r, 20), 20);
            }
            else {
                r.pos += 4;
                delta += read_bits(&r, 64);
            }
        }
        t += delta;
        put_item(ts, i, t);
        const uint64_t control = peek_bits(&r, 2);
        if (control < 0x2) {
            r.pos += 1;
        }
        else {
            r.pos += 2;
            if (control == 0x3) {
                const uint64_t field = read_bits(&r, 11);
                const int leading = (int)(field >> 6);
                sig = (int)(field & 63) ? (int)(field & 63) : 64;
                trailing = 64 - leading - sig;
                if (trailing < 0) {
                    return -1;
                }
            }
            v ^= read_bits(&r, sig) << trailing;
        }
        put_item(vs, i, v);
    }
    return r.pos <= end ? 0 : -1;
}

PyDoc_STRVAR(decode_chunk_doc,
"decode_chunk(data, /)\n"
"--\n"
"\n"
"Decode an XOR chunk into (array('q') timestamps, array('d') values), as\n"
"remote_storage.chunks.decode_chunk does. Return None for anything that is not\n"
"a valid chunk in a contiguous buffer: the caller's Python decoder then raises\n"
"the precise error.");

static PyObject *
decode_chunk(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        if (PyErr_ExceptionMatches(PyExc_BufferError) || PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            return Py_NewRef(Py_None); /* not contiguous bytes: the Python decoder copes or says why */
        }
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    const Py_ssize_t size = view.len;
    PyObject *result = NULL;
    PyObject *ts_bytes = NULL, *vs_bytes = NULL;
    Py_ssize_t count = size >= 2 ? (Py_ssize_t)(data[0] << 8 | data[1]) : 0;
    if (size < 2 || (count > 1 && (uint64_t)(count - 1) * 2 > 8 * (uint64_t)size)) {
        /* too short for the count, or for the 2 bits each sample after the first needs */
        result = Py_NewRef(Py_None);
        goto done;
    }
    ts_bytes = PyBytes_FromStringAndSize(NULL, count * 8);
    vs_bytes = ts_bytes != NULL ? PyBytes_FromStringAndSize(NULL, count * 8) : NULL;
    if (vs_bytes == NULL) {
        goto done;
    }
    if (count > 0
        && decode_xor(data, size, count, PyBytes_AS_STRING(ts_bytes), PyBytes_AS_STRING(vs_bytes)) < 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    xor_state *state = PyModule_GetState(module);
    PyObject *timestamps = PyObject_CallFunctionObjArgs(state->array_type, state->typecode_q, ts_bytes, NULL);
    PyObject *values = timestamps != NULL
        ? PyObject_CallFunctionObjArgs(state->array_type, state->typecode_d, vs_bytes, NULL) : NULL;
    if (values != NULL) {
        result = PyTuple_Pack(2, timestamps, values);
    }
    Py_XDECREF(timestamps);
    Py_XDECREF(values);
done:
    Py_XDECREF(ts_bytes);
    Py_XDECREF(vs_bytes);
    PyBuffer_Release(&view);
    return result;
}

/* -- module ------------------------------------------------------------------------- */

static PyMethodDef xor_methods[] = {
    {"encode_chunk", (PyCFunction)(void (*)(void))encode_chunk, METH_FASTCALL, encode_chunk_doc},
    {"pack_chunk", (PyCFunction)(void (*)(void))pack_chunk, METH_FASTCALL, pack_chunk_doc},
    {"decode_chunk", decode_chunk, METH_O, decode_chunk_doc},
    {NULL, NULL, 0, NULL},
};

static int
xor_exec(PyObject *module)
{
    xor_state *state = PyModule_GetState(module);
    PyObject *array_module = PyImport_ImportModule("array");
    if (array_module == NULL) {
        return -1;
    }
    state->array_type = PyObject_GetAttrString(array_module, "array");
    Py_DECREF(array_module);
    state->typecode_q = PyUnicode_InternFromString("q");
    state->typecode_d = PyUnicode_InternFromString("d");
    if (state->array_type == NULL || state->typecode_q == NULL || state->typecode_d == NULL) {
        return -1;
    }
    return 0;
}

static int
xor_traverse(PyObject *module, visitproc visit, void *arg)
{
    xor_state *state = PyModule_GetState(module);
    Py_VISIT(state->array_type);
    return 0;
}

static int
xor_clear(PyObject *module)
{
    xor_state *state = PyModule_GetState(module);
    Py_CLEAR(state->array_type);
    Py_CLEAR(state->typecode_q);
    Py_CLEAR(state->typecode_d);
    return 0;
}

static void
xor_free(void *module)
{
    xor_clear((PyObject *)module);
}

static PyModuleDef_Slot xor_slots[] = {
    {Py_mod_exec, xor_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef xor_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "remote_storage._xor",
    .m_doc = "The XOR chunk codec of remote_storage.chunks, in C.",
    .m_size = sizeof(xor_state),
    .m_methods = xor_methods,
    .m_slots = xor_slots,
    .m_traverse = xor_traverse,
    .m_clear = xor_clear,
    .m_free = xor_free,
};

PyMODINIT_FUNC
PyInit__xor(void)
{
    return PyModuleDef_Init(&xor_module);
}
