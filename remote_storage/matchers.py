"""Label matchers with Prometheus semantics.

A series that lacks a label is matched as if it had that label with the empty
value, so ``{a=""}`` selects series without ``a`` and ``{a!="x"}`` includes
them. Regular expressions use RE2 syntax (the ``google-re2`` package, as
Prometheus uses Go's RE2) and are fully anchored with ``.`` matching newlines,
as Prometheus 3 compiles them (``^(?s:<re>)$``). RE2 runs in linear time, so a
hostile pattern in a read request cannot stall the service.

>>> m = Matcher.parse("job", "=~", "node|api")
>>> m.matches("node"), m.matches("nodes"), m.matches("")
(True, False, False)
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import re2

__all__ = ["InvalidMatcher", "MatchType", "Matcher", "matches_all"]


class MatchType(enum.IntEnum):
    """The four matcher types; values are the remote-read protobuf enum numbers."""

    EQ = 0
    NEQ = 1
    RE = 2
    NRE = 3

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]


_SYMBOLS = {MatchType.EQ: "=", MatchType.NEQ: "!=", MatchType.RE: "=~", MatchType.NRE: "!~"}
_BY_SYMBOL = {symbol: match_type for match_type, symbol in _SYMBOLS.items()}


class InvalidMatcher(ValueError):
    """A matcher could not be built: unknown type or a regex RE2 rejects."""

    def __init__(self, name: str, value: str, reason: str) -> None:
        super().__init__(f"invalid matcher on label {name!r} with value {value!r}: {reason}")
        self.name = name
        self.value = value
        self.reason = reason


# Characters that make a pattern more than a literal string.
_META = frozenset("\\.+*?()|[]{}^$")


def _compile_regex(name: str, pattern: str) -> Callable[[str], bool]:
    """Return a predicate for the fully anchored pattern, with fast paths.

    The fast paths mirror the common PromQL selectors (``.*``, ``.+``, literal
    alternations such as ``a|b|c``) and give the same answers as RE2.
    """
    if pattern == ".*":
        return lambda value: True
    if pattern == ".+":
        return lambda value: value != ""
    if not any(ch in _META for ch in pattern):
        return pattern.__eq__
    alternatives = pattern.split("|")
    if len(alternatives) > 1 and not any(ch in _META for alt in alternatives for ch in alt):
        return frozenset(alternatives).__contains__
    try:
        compiled = re2.compile(f"^(?s:{pattern})$")
    except re2.error as exc:
        raise InvalidMatcher(name, pattern, f"not a valid RE2 regular expression ({exc})") from None

    def search(value: str) -> bool:
        return compiled.search(value) is not None

    return search


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher: ``name`` compared with ``value`` by ``type``.

    ``matches(v)`` takes the series' value of the label, or ``""`` when the
    series lacks it. ``matches_empty`` tells whether series lacking the label
    match, which decides whether an index lookup can narrow the candidates.
    """

    type: MatchType
    name: str
    value: str
    _predicate: Callable[[str], bool] = field(init=False, repr=False, compare=False)
    matches_empty: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            match_type = MatchType(self.type)
        except ValueError:
            raise InvalidMatcher(self.name, self.value, f"unknown matcher type {self.type!r}") from None
        object.__setattr__(self, "type", match_type)
        predicate: Callable[[str], bool]
        if match_type is MatchType.EQ:
            predicate = self.value.__eq__
        elif match_type is MatchType.NEQ:
            predicate = self.value.__ne__
        else:
            positive = _compile_regex(self.name, self.value)
            if match_type is MatchType.RE:
                predicate = positive
            else:

                def predicate(value: str) -> bool:
                    return not positive(value)

        object.__setattr__(self, "_predicate", predicate)
        object.__setattr__(self, "matches_empty", bool(predicate("")))

    @classmethod
    def parse(cls, name: str, op: str, value: str) -> Matcher:
        """Build a matcher from its PromQL operator (``=``, ``!=``, ``=~``, ``!~``)."""
        try:
            match_type = _BY_SYMBOL[op]
        except KeyError:
            raise InvalidMatcher(name, value, f"unknown operator {op!r}") from None
        return cls(match_type, name, value)

    def matches(self, value: str) -> bool:
        """True if a label value (``""`` for a missing label) satisfies the matcher."""
        return self._predicate(value)

    def __str__(self) -> str:
        return f"{self.name}{self.type.symbol}{_quote(self.value)}"


def _quote(value: str) -> str:
    return '"' + re.sub(r'(["\\])', r"\\\1", value).replace("\n", "\\n") + '"'


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True if the label set (name -> value) satisfies every matcher."""
    return all(m.matches(labels.get(m.name, "")) for m in matchers)
