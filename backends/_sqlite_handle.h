/* The sqlite3 handle of a Python sqlite3.Connection, for the C extensions that register SQL
 * functions on it (_sql_head.c, _sql_index.c).
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

#endif
