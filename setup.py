"""The optional C extensions; everything else about the package is in pyproject.toml.

The extensions are declared here rather than in ``[tool.setuptools.ext-modules]``,
which setuptools still marks experimental. ``optional=True``: without a C
compiler the install still succeeds and the pure-Python twins are used.
``remote_storage.native`` imports them, once, and says which implementation
runs (``IMPLEMENTATION``):

* ``remote_storage._xor``: the XOR chunk codec (``remote_storage.chunks``);
* ``remote_storage.protocol.wire._wire``: the protobuf records and stream
  frames of remote read (``remote_storage.protocol.wire.records``/``frames``);
* ``remote_storage.protocol.wire._v1scan``: the remote-write 1.0 scanner
  (``remote_storage.protocol.wire.v1_scan``);
* ``remote_storage.backends._memory_head``: the in-memory backend's append of
  one sample per series (``remote_storage.backends.memory``);
* ``remote_storage.backends._sql_head``: SQL functions that pack and unpack
  SQLite's sample rows inside SQLite (``remote_storage.backends.sql_head``);
  built only where SQLite's headers are installed (``libsqlite3-dev``);
* ``remote_storage.backends._sql_index``: the SQLite series index's varint lists
  (``remote_storage.backends.sql_postings``, ``.sql_index``), likewise.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "remote_storage._xor",
            sources=["remote_storage/_xor.c"],
            depends=["remote_storage/_columns.h", "remote_storage/_xor_encode.h"],
            optional=True,
        ),
        Extension(
            "remote_storage.protocol.wire._wire",
            sources=["remote_storage/protocol/wire/_wire.c"],
            depends=["remote_storage/_columns.h"],
            optional=True,
        ),
        Extension(
            "remote_storage.protocol.wire._v1scan",
            sources=["remote_storage/protocol/wire/_v1scan.c"],
            optional=True,
        ),
        Extension(
            "remote_storage.backends._memory_head",
            sources=["backends/_memory_head.c"],
            optional=True,
        ),
        Extension(
            "remote_storage.backends._sql_head",
            sources=["backends/_sql_head.c"],
            depends=["backends/_sqlite_handle.h", "remote_storage/_xor_encode.h"],
            include_dirs=["remote_storage"],
            libraries=["sqlite3"],
            optional=True,
        ),
        Extension(
            "remote_storage.backends._sql_index",
            sources=["backends/_sql_index.c"],
            depends=["backends/_sqlite_handle.h"],
            libraries=["sqlite3"],
            optional=True,
        ),
    ]
)
