"""The SQL backend stays split by job: a small glue module, dialect branches in one place only,
one IN-list bound, and tests that use the writer's public API rather than its internals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ROOT / "backends"
DIALECT_MODULE = BACKENDS / "sql_dialect.py"

#: A decision taken on the database's name: comparing a value with a dialect's name, reading the
#: name SQLAlchemy gives a connection or engine, flags named after a database, SQLAlchemy's
#: dialect-specific modules.
DIALECT_BRANCH = re.compile(
    r"""(==|!=|\bin\b|\bis\b|startswith\(|endswith\()\s*[(\[{]?\s*["'](sqlite|postgres(ql)?)\b"""
    r"""|["'](sqlite|postgres(ql)?)["']\s*(==|!=|\bin\b)"""
    r"|\b(conn|connection|engine|bind)\.dialect\.name\b"
    r"|\bis_(sqlite|postgres\w*)\b"
    r"|sqlalchemy\.dialects\b"
)
#: Private names of the SQL backend and its writer that tests once reached into.
PRIVATE_NAMES = re.compile(
    r"\.(_submit|_writer|_jobs|_engine|_read_engine|_read|_readers|_dialect|_ingest|_ids)\b"
    r"|\b_Job\b|\b_Dialect\b"
)


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(number, text) of the lines of ``path`` that are not comments."""
    return [
        (number, line)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if not line.lstrip().startswith("#")
    ]


def test_sql_py_is_the_glue_under_500_lines() -> None:
    lines = len((BACKENDS / "sql.py").read_text().splitlines())
    assert lines < 500, f"backends/sql.py has {lines} lines; move a job into its own module"


@pytest.mark.parametrize(
    "line",
    [
        'if dialect == "sqlite":',
        "if conn.dialect.name != 'postgresql':",
        'if backend in ("postgresql", "postgres"):',
        'return 1 if self.url.startswith("sqlite") else 4',
        "is_sqlite = True",
        "from sqlalchemy.dialects import postgresql",
    ],
)
def test_the_branch_pattern_finds_dialect_branches(line: str) -> None:
    assert DIALECT_BRANCH.search(line)


@pytest.mark.parametrize(
    "line",
    [
        '"""Samples in SQLite or PostgreSQL."""',
        'f"sql ({self.dialect.name} {where})"',
        '_ID.with_variant(Integer, "sqlite")',
    ],
)
def test_the_branch_pattern_leaves_names_in_prose_alone(line: str) -> None:
    assert not DIALECT_BRANCH.search(line)


def test_no_module_of_the_backends_but_the_dialect_one_branches_on_the_database() -> None:
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(BACKENDS.glob("*.py"))
        if path != DIALECT_MODULE
        for number, line in code_lines(path)
        if DIALECT_BRANCH.search(line)
    ]
    assert not found, "dialect branches outside backends/sql_dialect.py:\n" + "\n".join(found)
    assert any(DIALECT_BRANCH.search(line) for _, line in code_lines(DIALECT_MODULE))  # the scan sees them


def test_statements_are_not_rewritten_as_text_for_a_parameter_style() -> None:
    for path in sorted(BACKENDS.glob("sql*.py")):
        assert '.replace("?"' not in path.read_text(), path.name


def test_one_in_list_bound() -> None:
    definitions = [
        f"{path.name}:{number}"
        for path in sorted(BACKENDS.glob("*.py"))
        for number, line in code_lines(path)
        if re.match(r"MAX_IN\s*(:[^=]*)?=", line)
    ]
    assert [where.partition(":")[0] for where in definitions] == ["sql_schema.py"], definitions


def test_tests_use_the_public_api_of_the_sql_backend_and_its_writer() -> None:
    here = Path(__file__).resolve()
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.resolve() != here
        for number, line in code_lines(path)
        if PRIVATE_NAMES.search(line)
    ]
    assert not found, "tests reaching into private names of the SQL backend:\n" + "\n".join(found)
