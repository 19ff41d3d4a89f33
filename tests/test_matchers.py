"""Matcher semantics as Prometheus applies them: anchoring, RE2 syntax, missing labels."""

from __future__ import annotations

import pytest

from remote_storage.matchers import InvalidMatcher, Matcher, MatchType, matches_all

# (operator, pattern, label value ("" = label missing), expected)
CASES = [
    ("=", "node", "node", True),
    ("=", "node", "nodes", False),
    ("=", "", "", True),  # {a=""} selects series without a
    ("=", "", "x", False),
    ("!=", "x", "", True),  # {a!="x"} includes series without a
    ("!=", "x", "x", False),
    ("!=", "", "", False),
    ("=~", "x|", "", True),  # x or missing
    ("=~", "x|", "x", True),
    ("=~", "x|", "y", False),
    ("=~", ".+", "", False),
    ("=~", ".+", "a", True),
    ("=~", ".*", "", True),
    ("=~", ".*", "anything\nat all", True),
    ("!~", ".*", "", False),  # {a!~".*"} matches nothing
    ("!~", ".*", "x", False),
    ("!~", "", "", False),  # {a!~""} requires a to be present
    ("!~", "", "x", True),
    # fully anchored
    ("=~", "ode", "node", False),
    ("=~", "no", "node", False),
    ("=~", "n.*", "node", True),
    ("=~", "a|b", "ab", False),
    ("=~", "a|b", "b", True),
    ("!~", "a|b", "ab", True),
    ("=~", "foo|bar.*", "barbaz", True),
    ("=~", "foo|bar.*", "xfoo", False),
    # literal fast path keeps regex meaning of non-meta characters
    ("=~", "a-b/c", "a-b/c", True),
    ("=~", "a-b/c", "a-b", False),
    # dot matches newline (Prometheus 3 compiles (?s:...))
    ("=~", "a.b", "a\nb", True),
    # RE2 syntax: case-insensitive flag, Unicode classes, POSIX classes
    ("=~", "(?i)NODE", "node", True),
    ("=~", r"\pL+", "héllo", True),
    ("=~", r"\pL+", "h3llo", False),
    ("=~", "[[:alpha:]]+", "abc", True),
    ("=~", "[[:alpha:]]+", "ab1", False),
    ("=~", "[0-9]{2,3}", "123", True),
    ("=~", "[0-9]{2,3}", "1234", False),
    ("=~", r"a\.b", "a.b", True),
    ("=~", r"a\.b", "axb", False),
    # non-ASCII literals
    ("=", "Grüße", "Grüße", True),
    ("=~", "Grü.e", "Grüße", True),
]


@pytest.mark.parametrize(("op", "pattern", "value", "expected"), CASES)
def test_matcher_semantics(op: str, pattern: str, value: str, expected: bool) -> None:
    matcher = Matcher.parse("a", op, pattern)
    assert matcher.matches(value) is expected
    assert matcher.matches_empty is matcher.matches("")


@pytest.mark.parametrize("pattern", ["(a", "a**", r"(?<=a)b", r"(a)\1", "[z-a]"])
def test_patterns_re2_rejects_are_invalid(pattern: str) -> None:
    with pytest.raises(InvalidMatcher, match="not a valid RE2"):
        Matcher(MatchType.RE, "a", pattern)


def test_unknown_type_and_operator() -> None:
    with pytest.raises(InvalidMatcher, match="unknown matcher type"):
        Matcher(7, "a", "b")  # type: ignore[arg-type]
    with pytest.raises(InvalidMatcher, match="unknown operator"):
        Matcher.parse("a", "==", "b")


def test_protobuf_enum_numbers() -> None:
    assert [MatchType.EQ, MatchType.NEQ, MatchType.RE, MatchType.NRE] == [0, 1, 2, 3]
    assert Matcher(2, "a", "b").type is MatchType.RE  # type: ignore[arg-type]


def test_matches_all_uses_empty_for_missing_labels() -> None:
    labels = {"__name__": "up", "job": "node"}
    assert matches_all([Matcher.parse("job", "=", "node"), Matcher.parse("env", "=", "")], labels)
    assert not matches_all([Matcher.parse("job", "=", "node"), Matcher.parse("env", "=~", ".+")], labels)
    assert matches_all([], labels)


def test_str_is_promql() -> None:
    assert str(Matcher.parse("job", "=~", 'a"b')) == 'job=~"a\\"b"'


def test_hostile_pattern_runs_in_linear_time() -> None:
    # Catastrophic for a backtracking engine; RE2 answers at once.
    matcher = Matcher.parse("a", "=~", "(x+x+)+y")
    assert matcher.matches("x" * 5000) is False
