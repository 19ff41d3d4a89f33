"""PromQL series selectors, as the match[] parameter of Prometheus' label and series APIs takes them."""

from __future__ import annotations

import pytest

from remote_storage.matchers import Matcher
from remote_storage.selectors import InvalidSelector, parse_selector


def m(name: str, op: str, value: str) -> Matcher:
    return Matcher.parse(name, op, value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("up", (m("__name__", "=", "up"),)),
        ("  up  ", (m("__name__", "=", "up"),)),
        ("node:cpu:rate5m", (m("__name__", "=", "node:cpu:rate5m"),)),
        ('up{job="api"}', (m("__name__", "=", "up"), m("job", "=", "api"))),
        (
            '{job=~"a|b", instance!="x" , zone!~\'eu.*\',}',
            (m("job", "=~", "a|b"), m("instance", "!=", "x"), m("zone", "!~", "eu.*")),
        ),
        ("up{}", (m("__name__", "=", "up"),)),
        ('{__name__=~"node_.+"}', (m("__name__", "=~", "node_.+"),)),
        (
            '{"my.metric", "service.name"="api"}',
            (m("__name__", "=", "my.metric"), m("service.name", "=", "api")),
        ),
        ("x{a=`raw\\d+`}", (m("__name__", "=", "x"), m("a", "=", "raw\\d+"))),
        (
            'x{a="q\\"uote\\n\\t\\\\ \\u00e9 \\x41 \\101"}',
            (m("__name__", "=", "x"), m("a", "=", 'q"uote\n\t\\ é A A')),
        ),
        ("x{a='it\\'s'}", (m("__name__", "=", "x"), m("a", "=", "it's"))),
    ],
)
def test_valid_selectors(text: str, expected: tuple[Matcher, ...]) -> None:
    assert parse_selector(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty selector"),
        ("{}", "empty selector"),
        ('{job=""}', "at least one non-empty matcher"),
        ('{job=~".*"}', "at least one non-empty matcher"),
        ('up{job="a"', "expected ',' or '}'"),
        ('up{job "a"}', "expected one of"),
        ("up{job=a}", "expected a quoted string"),
        ('up{job="a}', "unterminated string"),
        ('up{job="\\q"}', "unknown escape"),
        ('up{job=~"("}', "not a valid RE2"),
        ('up{"other"}', "the metric name is given twice"),
        ('up{1a="x"}', "expected a label name"),
        ("up[5m]", "unexpected '['"),
        ('up{job="a"} extra', "unexpected 'e'"),
    ],
)
def test_invalid_selectors_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidSelector, match=reason.replace("(", r"\(").replace("[", r"\[")):
        parse_selector(text)
