/* SQL functions in C for the SQLite backend's sample rows, so that per-row work runs without
 * the interpreter (and with the interpreter lock released, as SQLite runs them inside
 * sqlite3_step).
 *
 * install(connection) -> bool
 *
 *   Registers on a sqlite3.Connection of this interpreter:
 *
 *   rs_pack(ts, value)       aggregate: the rows of a group as one packed blob (below).
 *
 *   rs_merge(packed, start, end)
 *                            aggregate: the packed blobs of a group merged into one, in
 *                            time order, the first of equal timestamps kept, trimmed to
 *                            [start, end]; NULL when nothing is left.
 *
 *   rs_chunks(packed, max_samples)
 *                            scalar: the samples of a packed blob as Prometheus' XOR chunks
 *                            of at most max_samples samples each (the encoder of
 *                            remote_storage/_xor_encode.h), one after the other, each as a
 *                            20-byte header (first and last timestamp, big-endian int64,
 *                            then the chunk's size, big-endian uint32) and the chunk;
 *                            NULL for NULL.
 *
 *   rs_union(a, b)           scalar: two packed blobs merged (a's sample kept on equal
 *                            timestamps).
 *
 *   rs_collect(id, data, ...)
 *                            aggregate: the rows of a group whose data is a non-empty blob,
 *                            one after the other, each as its id and then each integer
 *                            argument after data (big-endian int64 each), the data's size
 *                            (big-endian uint32) and the data; an empty blob when there
 *                            is none. A read of many series returns one row, so
 *                            the driver takes the interpreter lock back once, not per series.
 *
 *   rs_unpack(ids, timestamps, bits, generation_ms)
 *                            table-valued: three blobs of native int64 of equal length,
 *                            as rows (generation, series_id, ts, value), the generation
 *                            being floor(ts / generation_ms). A batch of rows is bound as
 *                            three parameters instead of four per row.
 *
 *   A packed blob holds n samples: first the n timestamps, then the n value bits, each a
 *   big-endian int64, in increasing time order. Big-endian, so that the bytes stored
 *   mean the same on every machine and PostgreSQL's int8send writes the same.
 *
 *   The connection's handle is found and checked by _sqlite_handle.h. When it cannot be used,
 *   nothing is registered and False is returned (the caller keeps its pure-Python statements).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_sqlite_handle.h"
#include "_xor_encode.h"

/* -- rs_pack ------------------------------------------------------------------------------ */

typedef struct {
    int64_t ts;
    int64_t value;
    int64_t order; /* arrival: the first of equal timestamps is kept */
} pair;

typedef struct {
    pair *rows;
    size_t count;
    size_t capacity;
    int unsorted;
    int failed;
} pack_state;

static int
reserve(pack_state *state, size_t more)
{
    if (state->count + more <= state->capacity) {
        return 1;
    }
    size_t capacity = state->capacity ? state->capacity : 64;
    while (capacity < state->count + more) {
        capacity *= 2;
    }
    pair *rows = sqlite3_realloc64(state->rows, capacity * sizeof(pair));
    if (rows == NULL) {
        state->failed = 1;
        return 0;
    }
    state->rows = rows;
    state->capacity = capacity;
    return 1;
}

static void
add(pack_state *state, int64_t ts, int64_t value)
{
    if (state->count && ts <= state->rows[state->count - 1].ts) {
        state->unsorted = 1;
    }
    state->rows[state->count].ts = ts;
    state->rows[state->count].value = value;
    state->rows[state->count].order = (int64_t)state->count;
    state->count++;
}

static int64_t
load_be(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return (int64_t)v;
}

static void
store_be(unsigned char *p, int64_t value)
{
    uint64_t v = (uint64_t)value;
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xFF);
        v >>= 8;
    }
}

/* Add a packed blob's samples; 0 when it is not one (or memory ran out). */
static int
add_packed(pack_state *state, sqlite3_value *value)
{
    if (sqlite3_value_type(value) == SQLITE_NULL) {
        return 1;
    }
    const unsigned char *data = sqlite3_value_blob(value);
    sqlite3_int64 bytes = sqlite3_value_bytes(value);
    if (bytes % 16) {
        return 0;
    }
    size_t n = (size_t)(bytes / 16);
    if (n == 0) {
        return 1;
    }
    if (!reserve(state, n)) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        add(state, load_be(data + 8 * i), load_be(data + 8 * (n + i)));
    }
    return 1;
}

static int
by_ts(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->ts != y->ts) {
        return (x->ts > y->ts) - (x->ts < y->ts);
    }
    return (x->order > y->order) - (x->order < y->order);
}

/* The state's samples as a packed blob in [start, end], the result of ctx; frees the rows. */
static void
result_packed(sqlite3_context *ctx, pack_state *state, int64_t start, int64_t end, int null_if_empty)
{
    size_t n = state->count, kept = 0;
    if (state->unsorted) {
        qsort(state->rows, n, sizeof(pair), by_ts);
    }
    for (size_t i = 0; i < n; i++) { /* drop repeats and samples out of range, in place */
        pair row = state->rows[i];
        if (row.ts < start || row.ts > end || (kept && state->rows[kept - 1].ts == row.ts)) {
            continue;
        }
        state->rows[kept++] = row;
    }
    if (kept == 0) {
        sqlite3_free(state->rows);
        if (null_if_empty) {
            sqlite3_result_null(ctx);
        } else {
            sqlite3_result_zeroblob(ctx, 0);
        }
        return;
    }
    unsigned char *out = sqlite3_malloc64(kept * 16);
    if (out == NULL) {
        sqlite3_free(state->rows);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    for (size_t i = 0; i < kept; i++) {
        store_be(out + 8 * i, state->rows[i].ts);
        store_be(out + 8 * (kept + i), state->rows[i].value);
    }
    sqlite3_free(state->rows);
    sqlite3_result_blob64(ctx, out, kept * 16, sqlite3_free);
}

static void
pack_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    pack_state *state = sqlite3_aggregate_context(ctx, sizeof(pack_state));
    if (state == NULL || state->failed) {
        return;
    }
    if (!reserve(state, 1)) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    add(state, sqlite3_value_int64(argv[0]), sqlite3_value_int64(argv[1]));
}

static void
pack_final(sqlite3_context *ctx)
{
    pack_state *state = sqlite3_aggregate_context(ctx, 0);
    if (state == NULL || state->count == 0) {
        sqlite3_result_zeroblob(ctx, 0);
        return;
    }
    if (state->failed) {
        sqlite3_free(state->rows);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    result_packed(ctx, state, INT64_MIN, INT64_MAX, 0);
}

typedef struct {
    pack_state pack;
    int64_t start;
    int64_t end;
} merge_state;

static void
merge_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    merge_state *state = sqlite3_aggregate_context(ctx, sizeof(merge_state));
    if (state == NULL || state->pack.failed) {
        return;
    }
    state->start = sqlite3_value_int64(argv[1]);
    state->end = sqlite3_value_int64(argv[2]);
    if (!add_packed(&state->pack, argv[0])) {
        state->pack.failed = 1;
    }
}

static void
merge_final(sqlite3_context *ctx)
{
    merge_state *state = sqlite3_aggregate_context(ctx, 0);
    if (state == NULL || state->pack.count == 0) {
        if (state != NULL) {
            sqlite3_free(state->pack.rows);
        }
        sqlite3_result_null(ctx);
        return;
    }
    if (state->pack.failed) {
        sqlite3_free(state->pack.rows);
        sqlite3_result_error(ctx, "rs_merge: not a packed blob, or out of memory", -1);
        return;
    }
    result_packed(ctx, &state->pack, state->start, state->end, 1);
}

static void
union_function(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    pack_state state = {0};
    if (!add_packed(&state, argv[0]) || !add_packed(&state, argv[1])) {
        sqlite3_free(state.rows);
        sqlite3_result_error(ctx, "rs_union: not a packed blob, or out of memory", -1);
        return;
    }
    result_packed(ctx, &state, INT64_MIN, INT64_MAX, 0);
}

/* -- rs_collect --------------------------------------------------------------------------- */

typedef struct {
    unsigned char *bytes;
    sqlite3_uint64 size;
    sqlite3_uint64 capacity;
    int failed;
} collect_state;

static void
collect_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    if (argc < 2) {
        sqlite3_result_error(ctx, "rs_collect: takes an id, a blob and integers", -1);
        return;
    }
    collect_state *state = sqlite3_aggregate_context(ctx, sizeof(collect_state));
    if (state == NULL || state->failed || sqlite3_value_type(argv[1]) != SQLITE_BLOB) {
        return;
    }
    sqlite3_uint64 length = (sqlite3_uint64)sqlite3_value_bytes(argv[1]);
    if (length == 0) {
        return;
    }
    if (length > UINT32_MAX) {
        state->failed = 1;
        return;
    }
    int more = argc - 2; /* integers after data */
    sqlite3_uint64 header = 8 * (sqlite3_uint64)(1 + more) + 4;
    sqlite3_uint64 needed = state->size + header + length;
    if (needed > state->capacity) {
        sqlite3_uint64 capacity = state->capacity ? state->capacity : 4096;
        while (capacity < needed) {
            capacity *= 2;
        }
        unsigned char *bytes = sqlite3_realloc64(state->bytes, capacity);
        if (bytes == NULL) {
            state->failed = 1;
            return;
        }
        state->bytes = bytes;
        state->capacity = capacity;
    }
    unsigned char *at = state->bytes + state->size;
    store_be(at, sqlite3_value_int64(argv[0]));
    for (int i = 0; i < more; i++) {
        store_be(at + 8 * (1 + i), sqlite3_value_int64(argv[2 + i]));
    }
    at += header - 4;
    for (int i = 0; i < 4; i++) {
        at[i] = (unsigned char)(length >> (24 - 8 * i));
    }
    memcpy(at + 4, sqlite3_value_blob(argv[1]), (size_t)length);
    state->size = needed;
}

static void
collect_final(sqlite3_context *ctx)
{
    collect_state *state = sqlite3_aggregate_context(ctx, 0);
    if (state != NULL && state->failed) {
        sqlite3_free(state->bytes);
        sqlite3_result_error(ctx, "rs_collect: out of memory, or a blob over 4 GiB", -1);
    } else if (state == NULL || state->size == 0) {
        sqlite3_free(state == NULL ? NULL : state->bytes);
        sqlite3_result_zeroblob(ctx, 0);
    } else {
        sqlite3_result_blob64(ctx, state->bytes, state->size, sqlite3_free);
    }
}

/* -- rs_chunks ---------------------------------------------------------------------------- */

#define CHUNK_HEADER 20

static void
chunks_function(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    sqlite3_int64 max_samples = sqlite3_value_int64(argv[1]);
    sqlite3_int64 bytes = sqlite3_value_bytes(argv[0]);
    const unsigned char *data = sqlite3_value_blob(argv[0]);
    if (bytes % 16 || max_samples < 1 || max_samples > MAX_SAMPLES) {
        sqlite3_result_error(ctx, "rs_chunks: not a packed blob, or max_samples not in 1..65535", -1);
        return;
    }
    size_t n = (size_t)(bytes / 16);
    if (n == 0) {
        sqlite3_result_zeroblob(ctx, 0);
        return;
    }
    size_t pieces = (n + (size_t)max_samples - 1) / (size_t)max_samples;
    size_t bound = pieces * (CHUNK_HEADER + chunk_bound(max_samples));
    int64_t *items = sqlite3_malloc64(n * 16); /* timestamps, then value bits, native order */
    unsigned char *out = sqlite3_malloc64(bound);
    if (items == NULL || out == NULL) {
        sqlite3_free(items);
        sqlite3_free(out);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    for (size_t i = 0; i < 2 * n; i++) {
        items[i] = load_be(data + 8 * i);
    }
    unsigned char *at = out;
    for (size_t lo = 0; lo < n; lo += (size_t)max_samples) {
        size_t count = n - lo < (size_t)max_samples ? n - lo : (size_t)max_samples;
        const xor_column ts = {(const char *)(items + lo), 8}, vs = {(const char *)(items + n + lo), 8};
        ptrdiff_t size = encode_xor(&ts, &vs, (ptrdiff_t)count, NULL, at + CHUNK_HEADER);
        if (size < 0) {
            sqlite3_free(items);
            sqlite3_free(out);
            sqlite3_result_error(ctx, "rs_chunks: timestamps not strictly increasing", -1);
            return;
        }
        store_be(at, items[lo]);
        store_be(at + 8, items[lo + count - 1]);
        for (int k = 0; k < 4; k++) {
            at[16 + k] = (unsigned char)((uint64_t)size >> (8 * (3 - k)));
        }
        at += CHUNK_HEADER + size;
    }
    sqlite3_free(items);
    sqlite3_result_blob64(ctx, out, (sqlite3_uint64)(at - out), sqlite3_free);
}

/* -- rs_unpack ---------------------------------------------------------------------------- */

enum { COL_GENERATION, COL_SERIES, COL_TS, COL_VALUE, COL_IDS, COL_TIMESTAMPS, COL_BITS, COL_WIDTH };

typedef struct {
    sqlite3_vtab_cursor base;
    int64_t *data; /* ids, then timestamps, then bits: 3 * count */
    sqlite3_int64 count;
    sqlite3_int64 row;
    int64_t width;
} unpack_cursor;

static int
unpack_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out, char **err)
{
    (void)aux, (void)argc, (void)argv, (void)err;
    return rs_declare_vtab(
        db,
        "CREATE TABLE x(generation INTEGER, series_id INTEGER, ts INTEGER, value INTEGER, "
        "ids HIDDEN, timestamps HIDDEN, bits HIDDEN, generation_ms HIDDEN)",
        out);
}

static int
unpack_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info)
{
    int rc = rs_required_arguments(vtab, info, COL_IDS, 4, "rs_unpack");
    info->estimatedCost = 1000;
    return rc;
}

static int
unpack_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out)
{
    (void)vtab;
    return rs_new_cursor(sizeof(unpack_cursor), out);
}

static int
unpack_close(sqlite3_vtab_cursor *base)
{
    unpack_cursor *cursor = (unpack_cursor *)base;
    sqlite3_free(cursor->data);
    sqlite3_free(cursor);
    return SQLITE_OK;
}

static int
unpack_filter(sqlite3_vtab_cursor *base, int plan, const char *plan_name, int argc, sqlite3_value **argv)
{
    (void)plan, (void)plan_name;
    unpack_cursor *cursor = (unpack_cursor *)base;
    sqlite3_free(cursor->data);
    cursor->data = NULL;
    cursor->count = 0;
    cursor->row = 0;
    if (argc != 4) {
        return SQLITE_ERROR;
    }
    sqlite3_int64 bytes = sqlite3_value_bytes(argv[0]);
    cursor->width = sqlite3_value_int64(argv[3]);
    if (bytes % 8 || sqlite3_value_bytes(argv[1]) != bytes || sqlite3_value_bytes(argv[2]) != bytes ||
        cursor->width <= 0) {
        base->pVtab->zErrMsg = sqlite3_mprintf("rs_unpack: blobs of unequal or odd length");
        return SQLITE_ERROR;
    }
    if (bytes == 0) {
        return SQLITE_OK;
    }
    cursor->data = sqlite3_malloc64(3 * bytes);
    if (cursor->data == NULL) {
        return SQLITE_NOMEM;
    }
    for (int k = 0; k < 3; k++) {
        memcpy((char *)cursor->data + k * bytes, sqlite3_value_blob(argv[k]), bytes);
    }
    cursor->count = bytes / 8;
    return SQLITE_OK;
}

static int
unpack_next(sqlite3_vtab_cursor *base)
{
    ((unpack_cursor *)base)->row++;
    return SQLITE_OK;
}

static int
unpack_eof(sqlite3_vtab_cursor *base)
{
    unpack_cursor *cursor = (unpack_cursor *)base;
    return cursor->row >= cursor->count;
}

static int
unpack_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int column)
{
    unpack_cursor *cursor = (unpack_cursor *)base;
    sqlite3_int64 n = cursor->count, i = cursor->row;
    int64_t ts = cursor->data[n + i];
    switch (column) {
    case COL_GENERATION: {
        int64_t g = ts / cursor->width;
        if (ts % cursor->width < 0) {
            g -= 1; /* floor division, as Python's // */
        }
        sqlite3_result_int64(ctx, g);
        break;
    }
    case COL_SERIES:
        sqlite3_result_int64(ctx, cursor->data[i]);
        break;
    case COL_TS:
        sqlite3_result_int64(ctx, ts);
        break;
    case COL_VALUE:
        sqlite3_result_int64(ctx, cursor->data[2 * n + i]);
        break;
    default:
        sqlite3_result_null(ctx);
    }
    return SQLITE_OK;
}

static int
unpack_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid)
{
    *rowid = ((unpack_cursor *)base)->row;
    return SQLITE_OK;
}

static sqlite3_module unpack_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only */
    .xConnect = unpack_connect,
    .xBestIndex = unpack_best_index,
    .xDisconnect = rs_free_vtab,
    .xDestroy = rs_free_vtab,
    .xOpen = unpack_open,
    .xClose = unpack_close,
    .xFilter = unpack_filter,
    .xNext = unpack_next,
    .xEof = unpack_eof,
    .xColumn = unpack_column,
    .xRowid = unpack_rowid,
};

/* -- install ------------------------------------------------------------------------------ */

static PyObject *
install(PyObject *module, PyObject *connection)
{
    (void)module;
    sqlite3 *db;
    int usable = rs_sqlite_handle(connection, &db);
    if (usable < 0) {
        return NULL;
    }
    if (!usable) {
        Py_RETURN_FALSE;
    }
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC;
    int rc = sqlite3_create_function_v2(db, "rs_pack", 2, flags, NULL, NULL, pack_step, pack_final, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_create_function_v2(db, "rs_merge", 3, flags, NULL, NULL, merge_step, merge_final, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_create_function_v2(db, "rs_chunks", 2, flags, NULL, chunks_function, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_create_function_v2(db, "rs_union", 2, flags, NULL, union_function, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_create_function_v2(db, "rs_collect", -1, flags, NULL, NULL, collect_step, collect_final, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_create_module_v2(db, "rs_unpack", &unpack_module, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        PyErr_Format(PyExc_RuntimeError, "cannot register the SQL functions: %s", sqlite3_errstr(rc));
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"install", install, METH_O, "Register rs_pack, rs_merge, rs_union, rs_collect, rs_chunks and rs_unpack on a sqlite3.Connection; False if not possible."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_sql_head", "The SQLite backend's sample-row functions in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__sql_head(void)
{
    return PyModule_Create(&module_def);
}
