"""The conformance kit catches real bugs: the backend of docs/backends.md passes, each mutant fails.

The backend is the code block of ``docs/backends.md`` as written there; each
mutant changes one thing in it (a line or two). Every run is a pytest
process of its own in a directory with no conftest and no configuration,
with ``--assert=plain``, as an author outside this project would run the
kit: the failure messages must explain themselves.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import pytest

from remote_storage.storage import TimeSeries
from remote_storage.testing import expect_series, float_from_bits, make_series

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "backends.md"
KIT_TIMEOUT = 300.0

TEST_MODULE = """\
from remote_storage.testing import BackendConformance


class TestJsonLinesStorage(BackendConformance):
    storage_factory = "jsonl_backend:JsonLinesStorage.from_url"
    unsupported = frozenset({"histograms"})
    fsync_observable = True

    def storage_url(self):
        return f"jsonl://{self.tmp_path}/data"
"""


def docs_backend() -> str:
    text = DOCS.read_text()
    match = re.search(r"<!-- example: jsonl-backend -->\n```python\n(.*?)```", text, re.S)
    assert match, "the jsonl-backend example is missing from docs/backends.md"
    return match.group(1)


@dataclass(frozen=True)
class Outcome:
    passed: set[str]
    skipped: set[str]
    failed: dict[str, str]  # test name -> failure message and text


def run_kit(source: str, directory: Path) -> Outcome:
    """Run the kit on the backend ``source`` in a pytest process of its own."""
    directory.mkdir()
    (directory / "jsonl_backend.py").write_text(source)
    (directory / "test_kit.py").write_text(TEST_MODULE)
    report = directory / "report.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "REMOTE_STORAGE_"))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--assert=plain",
            f"--rootdir={directory}",
            f"--junitxml={report}",
            f"--basetemp={directory / 'tmp'}",
            "test_kit.py",
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=KIT_TIMEOUT,
    )
    assert report.exists(), f"pytest wrote no report:\n{result.stdout}\n{result.stderr}"
    outcome = Outcome(set(), set(), {})
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = case.get("name", "")
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            outcome.failed[name] = f"{problem.get('message', '')}\n{problem.text or ''}"
        elif case.find("skipped") is not None:
            outcome.skipped.add(name)
        else:
            outcome.passed.add(name)
    return outcome


def mutate(source: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert old in source, f"mutation target not in the docs' backend: {old!r}"
        source = source.replace(old, new)
    return source


def test_docs_backend_passes_the_kit(tmp_path: Path) -> None:
    outcome = run_kit(docs_backend(), tmp_path / "kit")
    assert outcome.failed == {}
    assert len(outcome.passed) > 50
    # only what it declares or cannot have: histograms refused (that check runs), no other skip
    assert outcome.skipped == {"test_histograms_round_trip", "test_histograms_idempotent_and_conflicting"}
    assert {
        "test_unsupported_histograms_are_refused",
        "test_acknowledged_writes_survive_kill",
        "test_acknowledged_writes_were_synced",
        "test_concurrent_conflicting_and_repeated_writes",
    } <= outcome.passed


FSYNC = "        os.fsync(handle.fileno())\n"
FLUSH = "        handle.flush()\n"
APPEND = 'await asyncio.to_thread(self._append, ctx.tenant, line + "\\n")'

# name -> (edits, a check the mutant must fail, words its failure message must contain)
MUTANTS: dict[str, tuple[tuple[tuple[str, str], ...], str, tuple[str, ...]]] = {
    "no fsync": (
        ((FSYNC, ""),),
        "test_acknowledged_writes_were_synced",
        ('{__name__="synced"} at timestamp 0', "without a call to os.fsync"),
    ),
    "written only at close (no flush)": (
        ((FLUSH, ""), (FSYNC, "")),
        "test_acknowledged_writes_survive_kill",
        ("after SIGKILL", 'missing series {__name__="crash"'),
    ),
    "no persistence": (
        ((APPEND, "pass  # kept in memory only"),),
        "test_acknowledged_writes_survive_reopen",
        ("after close() and reopen()", 'missing series {__name__="many", i="000"}'),
    ),
    "no lock": (
        (("async with self._lock:", "if True:  # no lock"),),
        "test_concurrent_conflicting_and_repeated_writes",
        ('series {__name__="race"} at timestamp', "both acknowledged"),
    ),
    "floats compared by value": (
        (("elif before != bits:", "elif float_from_bits(before) != value:"),),
        "test_conflict_stores_nothing_of_the_request[0.0--0.0]",
        ('{__name__="c", job="j"} at t=10', "expected SampleConflict, but it returned normally"),
    ),
    "exclusive end": (
        (("query.start_ms <= t <= query.end_ms", "query.start_ms <= t < query.end_ms"),),
        "test_range_is_inclusive",
        ('series {__name__="r"}: missing sample at timestamp 30', "expected 3.0 (0x4008000000000000)"),
    ),
    "tenant ignored": (
        (("ctx.tenant", '"default"'),),
        "test_tenant_isolation",
        ('duplicate sample for timestamp 1 of series {__name__="t", job="j"}',),
    ),
    "partial write on conflict": (
        (
            (
                "new.setdefault(series.labels, {})",
                "new.setdefault(series.labels, stored.setdefault(series.labels, {}))",
            ),
        ),
        "test_conflict_stores_nothing_of_the_request[1.0-2.0]",
        ("after the refused request", 'unexpected series {__name__="other"}'),
    ),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_kit_catches_mutant(name: str, tmp_path: Path) -> None:
    edits, check, words = MUTANTS[name]
    outcome = run_kit(mutate(docs_backend(), *edits), tmp_path / "kit")
    assert check in outcome.failed, f"{name}: {check} did not fail; failed: {sorted(outcome.failed)}"
    message = outcome.failed[check]
    for word in words:
        assert word in message, f"{name}: {word!r} not in the failure of {check}:\n{message}"


def test_failure_names_series_timestamp_and_both_bit_patterns() -> None:
    labels = {"__name__": "up", "job": "a"}
    stored = make_series(labels, [(1000, float_from_bits(0x7FF0000000000002)), (2000, 1.0)])
    found = [make_series(labels, [(1000, float_from_bits(0x7FF8000000000001)), (2000, 1.0), (2000, 1.0)])]
    with pytest.raises(AssertionError) as raised:
        expect_series(found, [stored], "after a retry")
    assert str(raised.value).splitlines() == [
        "after a retry:",
        '  series {__name__="up", job="a"}: timestamp 2000 returned twice '
        "(values 1.0 (0x3FF0000000000000) and 1.0 (0x3FF0000000000000))",
        '  series {__name__="up", job="a"} at timestamp 1000: '
        "expected nan (0x7FF0000000000002), got nan (0x7FF8000000000001)",
    ]


def test_failure_names_missing_unexpected_and_misordered_series() -> None:
    a, b = make_series({"__name__": "a"}, [(1, 1.0)]), make_series({"__name__": "b"}, [(1, 1.0)])
    c = TimeSeries(make_series({"__name__": "c"}).labels, [5], [0.5])
    with pytest.raises(AssertionError) as raised:
        expect_series([b, a], [a, c], "query")
    assert str(raised.value).splitlines() == [
        "query:",
        '  series out of label order: {__name__="b"} is returned before {__name__="a"}',
        '  missing series {__name__="c"} (1 samples from t=5)',
        '  unexpected series {__name__="b"} (1 samples from t=1)',
    ]
