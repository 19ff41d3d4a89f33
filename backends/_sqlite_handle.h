/* The sqlite3 handle of a Python sqlite3.Connection, for the C extensions that register SQL
 * functions on it (_sql_head.c, _sql_index.c), and what their table-valued functions share.
 *
 * Python's sqlite3 module has no way to hand out the database handle, so it is taken from the
 * connection object, whose first field after the object header is the handle in every CPython
 * since the module exists. The handle is checked before use: it must come from the same SQLite
 * library as the module's, and a limit set through the module must read back through it.
 */
#ifndef RS_SQLITE_HANDLE_H
#define RS_SQLITE_HANDLE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sqlite3.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    sqlite3 *db;
} rs_connection_head;

/* 1 and *out set: the handle is usable; 0: it is not (nothing to register); -1: a Python error. */
static int
rs_sqlite_handle(PyObject *connection, sqlite3 **out)
{
    *out = NULL;
    PyObject *sqlite3_module = PyImport_ImportModule("sqlite3");
    if (sqlite3_module == NULL) {
        return -1;
    }
    PyObject *version = PyObject_GetAttrString(sqlite3_module, "sqlite_version");
    if (version == NULL) {
        Py_DECREF(sqlite3_module);
        return -1;
    }
    const char *text = PyUnicode_AsUTF8(version);
    int same_library = text != NULL && strcmp(text, sqlite3_libversion()) == 0;
    Py_DECREF(version);
    if (!same_library) {
        Py_DECREF(sqlite3_module);
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *type = PyObject_GetAttrString(sqlite3_module, "Connection");
    Py_DECREF(sqlite3_module);
    if (type == NULL) {
        return -1;
    }
    int is_connection = PyObject_TypeCheck(connection, (PyTypeObject *)type);
    Py_DECREF(type);
    if (!is_connection) {
        PyErr_SetString(PyExc_TypeError, "install() takes a sqlite3.Connection");
        return -1;
    }
    sqlite3 *db = ((rs_connection_head *)connection)->db;
    if (db == NULL) {
        return 0;
    }
    PyObject *old = PyObject_CallMethod(connection, "getlimit", "i", SQLITE_LIMIT_LIKE_PATTERN_LENGTH);
    if (old == NULL) {
        return -1;
    }
    long previous = PyLong_AsLong(old);
    Py_DECREF(old);
    if (previous == -1 && PyErr_Occurred()) {
        return -1;
    }
    long probe = previous > 1000 ? previous - 7 : previous + 7;
    PyObject *done = PyObject_CallMethod(connection, "setlimit", "il", SQLITE_LIMIT_LIKE_PATTERN_LENGTH, probe);
    if (done == NULL) {
        return -1;
    }
    Py_DECREF(done);
    int seen = sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, -1);
    done = PyObject_CallMethod(connection, "setlimit", "il", SQLITE_LIMIT_LIKE_PATTERN_LENGTH, previous);
    if (done == NULL) {
        return -1;
    }
    Py_DECREF(done);
    if (seen != probe) {
        return 0;
    }
    *out = db;
    return 1;
}

/* xConnect of a table-valued function with columns `declared` (a CREATE TABLE statement). */
static int
rs_declare_vtab(sqlite3 *db, const char *declared, sqlite3_vtab **out)
{
    int rc = sqlite3_declare_vtab(db, declared);
    if (rc != SQLITE_OK) {
        return rc;
    }
    sqlite3_vtab *vtab = sqlite3_malloc(sizeof(sqlite3_vtab));
    if (vtab == NULL) {
        return SQLITE_NOMEM;
    }
    memset(vtab, 0, sizeof(*vtab));
    *out = vtab;
    return SQLITE_OK;
}

/* xDisconnect (and xDestroy) of a table made by rs_declare_vtab. */
static int
rs_free_vtab(sqlite3_vtab *vtab)
{
    sqlite3_free(vtab);
    return SQLITE_OK;
}

/* xOpen's work: a cursor of `size` bytes (a struct starting with sqlite3_vtab_cursor), zeroed. */
static int
rs_new_cursor(size_t size, sqlite3_vtab_cursor **out)
{
    sqlite3_vtab_cursor *cursor = sqlite3_malloc64(size);
    if (cursor == NULL) {
        return SQLITE_NOMEM;
    }
    memset(cursor, 0, size);
    *out = cursor;
    return SQLITE_OK;
}

/* xBestIndex of a table-valued function whose `count` arguments are its hidden columns from
 * `first` on, all required: each equality constraint on them becomes an argument, in order. */
static int
rs_required_arguments(sqlite3_vtab *vtab, sqlite3_index_info *info, int first, int count, const char *name)
{
    int found[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    if (count > 8) {
        return SQLITE_ERROR;
    }
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (c->iColumn < first || c->iColumn >= first + count || c->op != SQLITE_INDEX_CONSTRAINT_EQ) {
            continue;
        }
        if (!c->usable) {
            return SQLITE_CONSTRAINT;
        }
        found[c->iColumn - first] = i;
    }
    for (int k = 0; k < count; k++) {
        if (found[k] < 0) {
            vtab->zErrMsg = sqlite3_mprintf("%s takes %d arguments", name, count);
            return SQLITE_ERROR;
        }
        info->aConstraintUsage[found[k]].argvIndex = k + 1;
        info->aConstraintUsage[found[k]].omit = 1;
    }
    return SQLITE_OK;
}

#endif
