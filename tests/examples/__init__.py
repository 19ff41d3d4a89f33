"""Tests of the programs in ``examples/``.

That folder is put on ``sys.path`` here, so its modules import by their own
names (``import parquet_backend``) in the tests and in the child processes
the conformance kit starts (they inherit ``sys.path``).
"""

import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))
