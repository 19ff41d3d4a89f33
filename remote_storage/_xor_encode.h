/* Prometheus' XOR chunk encoder, shared by the C extensions that write chunks:
 * remote_storage/_xor.c (encode_chunk, pack_chunk) and backends/_sql_head.c (rs_chunks, which
 * encodes head samples inside SQLite). Every function is static, so each extension carries its
 * own copy; there is one source. Free of Python: it runs where the interpreter lock is released.
 */
#ifndef REMOTE_STORAGE_XOR_ENCODE_H
#define REMOTE_STORAGE_XOR_ENCODE_H

#include <stddef.h>
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
chunk_bound(ptrdiff_t n)
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

/* A column of 64-bit items (int64 timestamps or float64 bit patterns) in native byte order,
 * item i at base + i * stride, which need not be aligned. */
typedef struct {
    const char *base;
    ptrdiff_t stride;
} xor_column;

static inline uint64_t
xor_item(const xor_column *col, ptrdiff_t i)
{
    uint64_t bits;
    memcpy(&bits, col->base + i * col->stride, sizeof bits);
    return bits;
}

/* Encode n >= 1 samples into out (chunk_bound(n) bytes); the chunk's size, or -1
 * when the timestamps are not strictly increasing. plan: NULL for Prometheus'
 * greedy windows, else the windows of plan_windows. */
static ptrdiff_t
encode_xor(const xor_column *ts, const xor_column *vs, ptrdiff_t n, const uint16_t *plan, unsigned char *out)
{
    bit_writer w = {out, 0, 0};
    put_bits(&w, (uint64_t)n, 16);
    int64_t t = as_int64(xor_item(ts, 0));
    uint64_t v = xor_item(vs, 0);
    /* zig-zag: sign bit spread over the word, as Go's PutVarint does */
    put_uvarint_bits(&w, ((uint64_t)t << 1) ^ (t < 0 ? UINT64_MAX : 0));
    put_bits(&w, v, 64);
    if (n > 1) {
        const int64_t t1 = as_int64(xor_item(ts, 1));
        if (t1 <= t) {
            return -1;
        }
        uint64_t delta = (uint64_t)t1 - (uint64_t)t; /* exact: 1 .. 2**64 - 1 */
        put_uvarint_bits(&w, delta);
        const uint64_t v1 = xor_item(vs, 1);
        xor_window window = {WINDOW_UNSET, 0};
        put_value(&w, &window, v1 ^ v, plan ? plan[1] : 0);
        t = t1;
        v = v1;
        for (ptrdiff_t i = 2; i < n; i++) {
            const int64_t tn = as_int64(xor_item(ts, i));
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
            const uint64_t vn = xor_item(vs, i);
            put_value(&w, &window, vn ^ v, plan ? plan[i] : 0);
            t = tn;
            delta = d;
            v = vn;
        }
    }
    flush_bits(&w);
    return (ptrdiff_t)(w.out - out);
}

#endif /* REMOTE_STORAGE_XOR_ENCODE_H */
