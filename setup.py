"""The optional C extensions; everything else about the package is in pyproject.toml.

The extensions are declared here rather than in ``[tool.setuptools.ext-modules]``,
which setuptools still marks experimental. ``optional=True``: without a C
compiler the install still succeeds and the pure-Python twins are used
(``remote_storage.protocol.v1_scan`` scans remote-write bodies,
``remote_storage.chunks`` and ``remote_storage.protocol.read`` encode chunks and
remote-read responses).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "remote_storage.protocol._v1scan",
            sources=["remote_storage/protocol/_v1scan.c"],
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
            libraries=["sqlite3"],
            optional=True,
        ),
        Extension(
            "remote_storage._codec",
            sources=["remote_storage/_codec.c"],
            optional=True,
        ),
    ]
)
