/* The XOR chunk codec of chunks.py and the protobuf records of remote read, in C.
 *
 *   encode_chunk(timestamps, values) -> bytes or None
 *   pack_chunk(timestamps, values) -> bytes or None
 *   decode_chunk(data) -> (array('q'), array('d')) or None
 *   encode_samples(timestamps, values) -> bytes
 *   encode_labels(labels) -> bytes
 *   encode_chunk_records(chunks) -> bytes
 *   encode_series_frames(query_index, label_records, chunks, max_frame_bytes) -> (bytes, int)
 *   encode_joined_labels(data) -> bytes or None
 *
 * Each has a pure-Python twin with the same results for every input
 * (chunks.py, protocol/read.py, protocol/streamed.py); tests/test_codec.py
 * runs both side by side.
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

/* The sample count of a chunk is a uint16. */
#define MAX_SAMPLES 0xFFFF
/* "No window yet": larger than any leading-zero count (5 bits), as in Prometheus. */
#define WINDOW_UNSET 0xFF
/* The widest sample after the first: a 68-bit delta-of-delta and a 77-bit value. */
#define MAX_SAMPLE_BITS (4 + 64 + 2 + 5 + 6 + 64)
/* Chunks up to this size are encoded on the stack (120-sample chunks need about 2.3 KiB at worst). */
#define STACK_CHUNK_BYTES 4096

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
    PyObject *array_type; /* array.array, for decode_chunk's results */
    PyObject *typecode_q;
    PyObject *typecode_d;
    PyObject *min_time; /* attribute names of an EncodedChunk */
    PyObject *max_time;
    PyObject *data;
} codec_state;

/* -- helpers ---------------------------------------------------------------------- */

/* The uint64's two's complement reading as int64 (no implementation-defined cast). */
static inline int64_t
as_int64(uint64_t u)
{
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

static inline int
count_leading_zeros(uint64_t x) /* x != 0 */
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_clzll(x);
#else
    int n = 0;
    while (!(x & 0x8000000000000000ULL)) {
        x <<= 1;
        n++;
    }
    return n;
#endif
}

static inline int
count_trailing_zeros(uint64_t x) /* x != 0 */
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int n = 0;
    while (!(x & 1)) {
        x >>= 1;
        n++;
    }
    return n;
#endif
}

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

/* -- XOR chunk encoder -------------------------------------------------------------- */

/* Bits written MSB first, through a 64-bit accumulator flushed in whole words.
 * The caller sizes the buffer for the worst case, so no write is checked. */
typedef struct {
    unsigned char *out;
    uint64_t acc; /* pending bits, the last written lowest */
    int nacc;     /* 0..63 */
} bit_writer;

static inline void
store_be64(unsigned char *out, uint64_t word)
{
    for (int k = 7; k >= 0; k--) {
        out[k] = (unsigned char)word;
        word >>= 8;
    }
}

/* Append the low n bits of v (1 <= n <= 64, v < 2**n). */
static inline void
put_bits(bit_writer *w, uint64_t v, int n)
{
    const int room = 64 - w->nacc;
    if (n < room) {
        w->acc = (w->acc << n) | v;
        w->nacc += n;
        return;
    }
    const int rest = n - room; /* 0..63 bits of v that do not fit this word */
    const uint64_t word = (room == 64 ? 0 : w->acc << room) | (v >> rest);
    store_be64(w->out, word);
    w->out += 8;
    w->acc = rest ? v & ((UINT64_C(1) << rest) - 1) : 0;
    w->nacc = rest;
}

/* Write the pending bits, the last byte padded with zero bits. */
static inline void
flush_bits(bit_writer *w)
{
    while (w->nacc >= 8) {
        w->nacc -= 8;
        *w->out++ = (unsigned char)(w->acc >> w->nacc);
    }
    if (w->nacc > 0) {
        *w->out++ = (unsigned char)(w->acc << (8 - w->nacc));
        w->nacc = 0;
    }
}

static inline void
put_uvarint_bits(bit_writer *w, uint64_t value)
{
    while (value >= 0x80) {
        put_bits(w, (value & 0x7F) | 0x80, 8);
        value >>= 7;
    }
    put_bits(w, value, 8);
}

/* The most bytes a chunk of n >= 1 samples can take: count, varint and value of
 * sample 0, uvarint delta of sample 1, at most MAX_SAMPLE_BITS per sample after
 * that, plus one word of slack for put_bits' whole-word stores. */
static inline size_t
chunk_bound(Py_ssize_t n)
{
    return 2 + 10 + 8 + 10 + ((size_t)n * MAX_SAMPLE_BITS + 7) / 8 + 8;
}

typedef struct {
    int leading; /* WINDOW_UNSET before the first "11" control */
    int trailing;
} xor_window;

/* A forced window of the plan (pack_chunk): the value starts a window with these
 * leading and trailing zero counts instead of the greedy choice. 0: no force. */
#define FORCED 0x8000
#define forced_window(leading, trailing) ((uint16_t)(FORCED | ((leading) << 6) | (trailing)))

static inline void
put_value(bit_writer *w, xor_window *window, uint64_t x, uint16_t forced)
{
    if (x == 0) {
        put_bits(w, 0, 1);
        return;
    }
    int lz = count_leading_zeros(x);
    if (lz > 31) {
        lz = 31; /* the field has 5 bits; the extra zeros travel in the payload */
    }
    int tz = count_trailing_zeros(x);
    if (!forced && lz >= window->leading && tz >= window->trailing) {
        put_bits(w, 0x2, 2);
        put_bits(w, x >> window->trailing, 64 - window->leading - window->trailing);
        return;
    }
    if (forced) {
        lz = (forced >> 6) & 0x1F;
        tz = forced & 0x3F;
    }
    window->leading = lz;
    window->trailing = tz;
    const int sig = 64 - lz - tz;
    put_bits(w, (UINT64_C(0x3) << 11) | ((uint64_t)lz << 6) | (uint64_t)(sig & 63), 13);
    put_bits(w, x >> tz, sig);
}

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

/* Encode n >= 1 samples into out (chunk_bound(n) bytes); the chunk's size, or -1
 * when the timestamps are not strictly increasing. plan: NULL for Prometheus'
 * greedy windows, else the windows of plan_windows. */
static Py_ssize_t
encode_xor(const column *ts, const column *vs, Py_ssize_t n, const uint16_t *plan, unsigned char *out)
{
    bit_writer w = {out, 0, 0};
    put_bits(&w, (uint64_t)n, 16);
    int64_t t = as_int64(column_item(ts, 0));
    uint64_t v = column_item(vs, 0);
    /* zig-zag: sign bit spread over the word, as Go's PutVarint does */
    put_uvarint_bits(&w, ((uint64_t)t << 1) ^ (t < 0 ? UINT64_MAX : 0));
    put_bits(&w, v, 64);
    if (n > 1) {
        const int64_t t1 = as_int64(column_item(ts, 1));
        if (t1 <= t) {
            return -1;
        }
        uint64_t delta = (uint64_t)t1 - (uint64_t)t; /* exact: 1 .. 2**64 - 1 */
        put_uvarint_bits(&w, delta);
        const uint64_t v1 = column_item(vs, 1);
        xor_window window = {WINDOW_UNSET, 0};
        put_value(&w, &window, v1 ^ v, plan ? plan[1] : 0);
        t = t1;
        v = v1;
        for (Py_ssize_t i = 2; i < n; i++) {
            const int64_t tn = as_int64(column_item(ts, i));
            if (tn <= t) {
                return -1;
            }
            const uint64_t d = (uint64_t)tn - (uint64_t)t;
            const int64_t dod = as_int64(d - delta); /* wrapped to int64, as in Go */
            const uint64_t field = (uint64_t)dod;
            if (dod == 0) {
                put_bits(&w, 0, 1);
            }
            else if (dod >= -8191 && dod <= 8192) {
                put_bits(&w, (UINT64_C(0x2) << 14) | (field & 0x3FFF), 16);
            }
            else if (dod >= -65535 && dod <= 65536) {
                put_bits(&w, (UINT64_C(0x6) << 17) | (field & 0x1FFFF), 20);
            }
            else if (dod >= -524287 && dod <= 524288) {
                put_bits(&w, (UINT64_C(0xE) << 20) | (field & 0xFFFFF), 24);
            }
            else {
                put_bits(&w, 0xF, 4);
                put_bits(&w, field, 64);
            }
            const uint64_t vn = column_item(vs, i);
            put_value(&w, &window, vn ^ v, plan ? plan[i] : 0);
            t = tn;
            delta = d;
            v = vn;
        }
    }
    flush_bits(&w);
    return (Py_ssize_t)(w.out - out);
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
            const Py_ssize_t size = encode_xor(&ts, &vs, n, plan, out);
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
    codec_state *state = PyModule_GetState(module);
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
chunk_fields_get(codec_state *state, PyObject *chunk, chunk_fields *fields)
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
    codec_state *state = PyModule_GetState(module);
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

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), eight bytes a step. The
 * tables are filled once, when the module is first executed. */
static uint32_t crc32c_table[8][256];

static void
crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;
        for (int k = 0; k < 8; k++) {
            crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        crc32c_table[0][i] = crc;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            const uint32_t prev = crc32c_table[t - 1][i];
            crc32c_table[t][i] = (prev >> 8) ^ crc32c_table[0][prev & 0xFF];
        }
    }
}

static uint32_t
crc32c(const unsigned char *data, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (len >= 8) {
        const uint32_t low = crc ^ ((uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                                    (uint32_t)data[3] << 24);
        crc = crc32c_table[7][low & 0xFF] ^ crc32c_table[6][(low >> 8) & 0xFF] ^
              crc32c_table[5][(low >> 16) & 0xFF] ^ crc32c_table[4][low >> 24] ^
              crc32c_table[3][data[4]] ^ crc32c_table[2][data[5]] ^ crc32c_table[1][data[6]] ^
              crc32c_table[0][data[7]];
        data += 8;
        len -= 8;
    }
    while (len--) {
        crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *data++) & 0xFF];
    }
    return crc ^ 0xFFFFFFFFu;
}

/* What a chunk is taken to add to a frame while filling it (streamed.py's _CHUNK_OVERHEAD). */
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
"Frames are cut as remote_storage.protocol.streamed.series_frames cuts them.");

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
    codec_state *state = PyModule_GetState(module);
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
        const uint32_t crc = crc32c(message, (size_t)(out - message));
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

static PyMethodDef codec_methods[] = {
    {"encode_chunk", (PyCFunction)(void (*)(void))encode_chunk, METH_FASTCALL, encode_chunk_doc},
    {"pack_chunk", (PyCFunction)(void (*)(void))pack_chunk, METH_FASTCALL, pack_chunk_doc},
    {"decode_chunk", decode_chunk, METH_O, decode_chunk_doc},
    {"encode_samples", (PyCFunction)(void (*)(void))encode_samples, METH_FASTCALL, encode_samples_doc},
    {"encode_labels", encode_labels, METH_O, encode_labels_doc},
    {"encode_chunk_records", encode_chunk_records, METH_O, encode_chunk_records_doc},
    {"encode_series_frames", (PyCFunction)(void (*)(void))encode_series_frames, METH_FASTCALL,
     encode_series_frames_doc},
    {"encode_joined_labels", encode_joined_labels, METH_O, encode_joined_labels_doc},
    {NULL, NULL, 0, NULL},
};

static int
codec_exec(PyObject *module)
{
    codec_state *state = PyModule_GetState(module);
    crc32c_init();
    PyObject *array_module = PyImport_ImportModule("array");
    if (array_module == NULL) {
        return -1;
    }
    state->array_type = PyObject_GetAttrString(array_module, "array");
    Py_DECREF(array_module);
    state->typecode_q = PyUnicode_InternFromString("q");
    state->typecode_d = PyUnicode_InternFromString("d");
    state->min_time = PyUnicode_InternFromString("min_time");
    state->max_time = PyUnicode_InternFromString("max_time");
    state->data = PyUnicode_InternFromString("data");
    if (state->array_type == NULL || state->typecode_q == NULL || state->typecode_d == NULL ||
        state->min_time == NULL || state->max_time == NULL || state->data == NULL) {
        return -1;
    }
    return 0;
}

static int
codec_traverse(PyObject *module, visitproc visit, void *arg)
{
    codec_state *state = PyModule_GetState(module);
    Py_VISIT(state->array_type);
    return 0;
}

static int
codec_clear(PyObject *module)
{
    codec_state *state = PyModule_GetState(module);
    Py_CLEAR(state->array_type);
    Py_CLEAR(state->typecode_q);
    Py_CLEAR(state->typecode_d);
    Py_CLEAR(state->min_time);
    Py_CLEAR(state->max_time);
    Py_CLEAR(state->data);
    return 0;
}

static void
codec_free(void *module)
{
    codec_clear((PyObject *)module);
}

static PyModuleDef_Slot codec_slots[] = {
    {Py_mod_exec, codec_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef codec_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "remote_storage._codec",
    .m_doc = "The XOR chunk codec and remote-read protobuf records of remote_storage, in C.",
    .m_size = sizeof(codec_state),
    .m_methods = codec_methods,
    .m_slots = codec_slots,
    .m_traverse = codec_traverse,
    .m_clear = codec_clear,
    .m_free = codec_free,
};

PyMODINIT_FUNC
PyInit__codec(void)
{
    return PyModuleDef_Init(&codec_module);
}
