"""The optional C scanner; everything else about the package is in pyproject.toml.

The extension is declared here rather than in ``[tool.setuptools.ext-modules]``,
which setuptools still marks experimental. ``optional=True``: without a C
compiler the install still succeeds and ``remote_storage.protocol.v1_scan``
uses its pure-Python scanner.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "remote_storage.protocol._v1scan",
            sources=["remote_storage/protocol/_v1scan.c"],
            optional=True,
        )
    ]
)
