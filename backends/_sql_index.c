/* The SQLite series index's varint lists in C (see backends/sql_postings.py and sql_index.py).
 *
 * install(connection) -> bool
 *
 *   Registers on a sqlite3.Connection of this interpreter:
 *
 *   rs_posting_ids(first_id, ids)
 *                            table-valued: one row (column id) per series id of a postings
 *                            row: first_id, then first_id plus each running sum of the
 *                            unsigned varints of the blob ids.
 *
 *   False when the connection's handle cannot be used (_sqlite_handle.h): nothing is
 *   registered, and the caller uses the Python twin of the function.
 *
 * unpack_pairs(data) -> list[int]
 *
 *   The pair ids of rs_series.pairs: zig-zag varints of the differences between consecutive
 *   ids, the first from 0.
 *
 * Both decode as their Python twins do, malformed input included: bits past the 64th are
 * dropped, sums wrap around in 64 bits, and an unfinished varint at the end is ignored.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#include "_sqlite_handle.h"

/* -- rs_posting_ids ------------------------------------------------------------------------ */

enum { COL_ID, COL_FIRST, COL_IDS };

typedef struct {
    sqlite3_vtab_cursor base;
    unsigned char *data;
    sqlite3_int64 size;
    sqlite3_int64 pos;
    uint64_t id;
    sqlite3_int64 row;
    int done;
} postings_cursor;

static int
postings_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out, char **err)
{
    (void)aux, (void)argc, (void)argv, (void)err;
    return rs_declare_vtab(db, "CREATE TABLE x(id INTEGER, first_id HIDDEN, ids HIDDEN)", out);
}

static int
postings_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info)
{
    int rc = rs_required_arguments(vtab, info, COL_FIRST, 2, "rs_posting_ids");
    info->estimatedCost = 100;
    return rc;
}

static int
postings_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out)
{
    (void)vtab;
    return rs_new_cursor(sizeof(postings_cursor), out);
}

static int
postings_close(sqlite3_vtab_cursor *base)
{
    postings_cursor *cursor = (postings_cursor *)base;
    sqlite3_free(cursor->data);
    sqlite3_free(cursor);
    return SQLITE_OK;
}

/* The next unsigned varint at *pos, or 0 when the data ends before one is complete. */
static int
next_uvarint(const unsigned char *data, sqlite3_int64 size, sqlite3_int64 *pos, uint64_t *value)
{
    uint64_t result = 0;
    unsigned shift = 0;
    for (sqlite3_int64 i = *pos; i < size; i++) {
        unsigned char byte = data[i];
        if (shift < 64) {
            result |= (uint64_t)(byte & 0x7F) << shift;
        }
        shift += 7;
        if (byte < 0x80) {
            *pos = i + 1;
            *value = result;
            return 1;
        }
    }
    *pos = size;
    return 0;
}

static int
postings_filter(sqlite3_vtab_cursor *base, int plan, const char *plan_name, int argc, sqlite3_value **argv)
{
    (void)plan, (void)plan_name;
    postings_cursor *cursor = (postings_cursor *)base;
    sqlite3_free(cursor->data);
    cursor->data = NULL;
    cursor->size = cursor->pos = cursor->row = 0;
    cursor->done = 1;
    if (argc != 2) {
        return SQLITE_ERROR;
    }
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        return SQLITE_OK; /* no row: as the Python twin */
    }
    cursor->id = (uint64_t)sqlite3_value_int64(argv[0]);
    cursor->done = 0;
    sqlite3_int64 size = sqlite3_value_bytes(argv[1]);
    if (size > 0) {
        cursor->data = sqlite3_malloc64(size);
        if (cursor->data == NULL) {
            return SQLITE_NOMEM;
        }
        memcpy(cursor->data, sqlite3_value_blob(argv[1]), size);
        cursor->size = size;
    }
    return SQLITE_OK;
}

static int
postings_next(sqlite3_vtab_cursor *base)
{
    postings_cursor *cursor = (postings_cursor *)base;
    uint64_t delta;
    if (next_uvarint(cursor->data, cursor->size, &cursor->pos, &delta)) {
        cursor->id += delta;
        cursor->row++;
    } else {
        cursor->done = 1;
    }
    return SQLITE_OK;
}

static int
postings_eof(sqlite3_vtab_cursor *base)
{
    return ((postings_cursor *)base)->done;
}

static int
postings_column(sqlite3_vtab_cursor *base, sqlite3_context *ctx, int column)
{
    if (column == COL_ID) {
        sqlite3_result_int64(ctx, (sqlite3_int64)((postings_cursor *)base)->id);
    } else {
        sqlite3_result_null(ctx);
    }
    return SQLITE_OK;
}

static int
postings_rowid(sqlite3_vtab_cursor *base, sqlite3_int64 *rowid)
{
    *rowid = ((postings_cursor *)base)->row;
    return SQLITE_OK;
}

static sqlite3_module postings_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only */
    .xConnect = postings_connect,
    .xBestIndex = postings_best_index,
    .xDisconnect = rs_free_vtab,
    .xDestroy = rs_free_vtab,
    .xOpen = postings_open,
    .xClose = postings_close,
    .xFilter = postings_filter,
    .xNext = postings_next,
    .xEof = postings_eof,
    .xColumn = postings_column,
    .xRowid = postings_rowid,
};

/* -- Python functions ---------------------------------------------------------------------- */

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
    int rc = sqlite3_create_module_v2(db, "rs_posting_ids", &postings_module, NULL, NULL);
    if (rc != SQLITE_OK) {
        PyErr_Format(PyExc_RuntimeError, "cannot register rs_posting_ids: %s", sqlite3_errstr(rc));
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyObject *
unpack_pairs(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *data = view.buf;
    sqlite3_int64 size = view.len, pos = 0;
    PyObject *ids = PyList_New(0);
    uint64_t previous = 0, zigzag;
    while (ids != NULL && next_uvarint(data, size, &pos, &zigzag)) {
        previous += (zigzag >> 1) ^ (0 - (zigzag & 1));
        PyObject *id = PyLong_FromLongLong((long long)previous);
        if (id == NULL || PyList_Append(ids, id) < 0) {
            Py_XDECREF(id);
            Py_CLEAR(ids);
            break;
        }
        Py_DECREF(id);
    }
    PyBuffer_Release(&view);
    return ids;
}

static PyMethodDef methods[] = {
    {"install", install, METH_O, "Register rs_posting_ids on a sqlite3.Connection; False if not possible."},
    {"unpack_pairs", unpack_pairs, METH_O, "The pair ids of a packed rs_series.pairs blob."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_sql_index", "The SQLite series index's varint lists in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__sql_index(void)
{
    return PyModule_Create(&module_def);
}
