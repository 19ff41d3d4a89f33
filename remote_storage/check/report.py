"""The rows of a check run, and how they are shown: a table, or JSON.

Every check is a named row with a level and an outcome:

* level ``must``: what a remote-write/remote-read endpoint must do for
  Prometheus to work with it (the specifications' MUSTs and what
  Prometheus' own sender and reader rely on); ``info``: behaviour the
  specifications leave open, where answers differ between real receivers
  (Prometheus' included), reported so that the difference has a name;
* outcome ``pass``; ``fail`` (a ``must`` row, with the reason); ``differs``
  (an ``info`` row whose answer is not the one this service gives, named);
  ``unsupported`` (the endpoint does not implement an optional feature:
  remote write 2.0, the streamed read response); ``skipped`` (an earlier
  step it depends on failed).

A run passes when no row failed; ``strict`` also counts ``differs`` and
``unsupported`` rows as failures (this service passes strict).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Level", "Outcome", "Result", "format_table", "passed", "to_json"]


class Level(enum.Enum):
    MUST = "must"
    INFO = "info"


class Outcome(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    DIFFERS = "differs"
    UNSUPPORTED = "unsupported"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Result:
    """One row: the check's name, its level, its outcome and a one-line detail."""

    name: str
    level: Level
    outcome: Outcome
    detail: str = ""

    def counts_as_failure(self, strict: bool = False) -> bool:
        if self.outcome is Outcome.FAIL:
            return True
        return strict and self.outcome in (Outcome.DIFFERS, Outcome.UNSUPPORTED)


def passed(results: Sequence[Result], strict: bool = False) -> bool:
    """True when no row counts as a failure (see the module docstring)."""
    return not any(result.counts_as_failure(strict) for result in results)


def _summary(results: Sequence[Result], strict: bool) -> str:
    counts = Counter(result.outcome for result in results)
    parts = [f"{counts[outcome]} {outcome.value}" for outcome in Outcome if counts[outcome]]
    verdict = "PASS" if passed(results, strict) else "FAIL"
    return f"{verdict}: {', '.join(parts)}{' (strict)' if strict else ''}"


def format_table(results: Sequence[Result], strict: bool = False) -> str:
    """The rows as an aligned text table, then the verdict and the counts."""
    header = ("CHECK", "LEVEL", "RESULT", "DETAIL")
    rows = [(r.name, r.level.value, r.outcome.value, r.detail) for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        lines.append("  ".join([*cells, row[3]]).rstrip())
    lines.append(_summary(results, strict))
    return "\n".join(lines)


def to_json(results: Sequence[Result], strict: bool = False, **about: Any) -> dict[str, Any]:
    """The run as a JSON-ready dict: ``about`` (URLs, run id), the verdict, the counts and the rows."""
    counts = Counter(result.outcome.value for result in results)
    return {
        **about,
        "passed": passed(results, strict),
        "strict": strict,
        "counts": {outcome.value: counts[outcome.value] for outcome in Outcome},
        "checks": [
            {"name": r.name, "level": r.level.value, "result": r.outcome.value, "detail": r.detail}
            for r in results
        ],
    }
