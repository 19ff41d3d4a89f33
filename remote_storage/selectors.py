"""PromQL series selectors (``up{job="api", instance=~"10\\..*"}``) as tuples of matchers.

The grammar of the ``match[]`` parameter of Prometheus' HTTP API: an optional
metric name, then optionally braces holding comma-separated matchers (a
trailing comma allowed). Label names are identifiers or, as Prometheus 3
allows for UTF-8 names, quoted strings; a quoted string alone in the braces
is the metric name (``{"my.metric", job="a"}``). Values are double-quoted or
single-quoted strings with Go's escapes, or raw strings in backticks. As in
Prometheus, a selector must hold at least one matcher that does not match
the empty string, so that it cannot select every series.

>>> [str(m) for m in parse_selector('up{job=~"api|db"}')]
['__name__="up"', 'job=~"api|db"']
"""

from __future__ import annotations

import re

from remote_storage.matchers import InvalidMatcher, Matcher

__all__ = ["InvalidSelector", "parse_selector"]

_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPERATOR = re.compile(r"=~|!~|!=|=")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}


class InvalidSelector(ValueError):
    """A series selector that does not parse, or that would select every series."""

    def __init__(self, selector: str, reason: str) -> None:
        super().__init__(f"invalid series selector {selector!r}: {reason}")
        self.selector = selector
        self.reason = reason


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, reason: str) -> InvalidSelector:
        return InvalidSelector(self.text, f"{reason} at position {self.pos}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self, pattern: re.Pattern[str]) -> str | None:
        found = pattern.match(self.text, self.pos)
        if found is None:
            return None
        self.pos = found.end()
        return found.group()

    def string(self) -> str:
        quote = self.peek()
        if quote not in ('"', "'", "`"):
            raise self.fail("expected a quoted string")
        self.pos += 1
        if quote == "`":
            end = self.text.find("`", self.pos)
            if end < 0:
                raise self.fail("unterminated raw string")
            value = self.text[self.pos : end]
            self.pos = end + 1
            return value
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.fail("unterminated string")
            char = self.text[self.pos]
            self.pos += 1
            if char == quote:
                return "".join(out)
            if char == "\n":
                raise self.fail("newline in a string")
            if char != "\\":
                out.append(char)
                continue
            out.append(self.escape(quote))

    def escape(self, quote: str) -> str:
        if self.pos >= len(self.text):
            raise self.fail("unterminated escape")
        char = self.text[self.pos]
        self.pos += 1
        if char in _SIMPLE_ESCAPES and (char not in "\"'" or char == quote):
            return _SIMPLE_ESCAPES[char]
        digits = {"x": 2, "u": 4, "U": 8}.get(char)
        if digits is not None:
            code = self.text[self.pos : self.pos + digits]
            if len(code) != digits or not all(c in "0123456789abcdefABCDEF" for c in code):
                raise self.fail(f"invalid \\{char} escape")
            self.pos += digits
            return chr(int(code, 16)) if char != "x" else bytes([int(code, 16)]).decode("latin-1")
        if char in "01234567":
            code = self.text[self.pos - 1 : self.pos + 2]
            if len(code) != 3 or not all(c in "01234567" for c in code) or int(code, 8) > 255:
                raise self.fail("invalid octal escape")
            self.pos += 2
            return chr(int(code, 8))
        raise self.fail(f"unknown escape \\{char}")

    def parse(self) -> tuple[Matcher, ...]:
        matchers: list[Matcher] = []
        self.skip_space()
        name = self.take(_IDENTIFIER)
        if name is not None:
            matchers.append(Matcher.parse("__name__", "=", name))
            self.skip_space()
        if self.peek() == "{":
            self.pos += 1
            self.braces(matchers, has_name=name is not None)
            self.skip_space()
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos]!r}")
        if not matchers:
            raise InvalidSelector(self.text, "empty selector")
        if all(m.matches_empty for m in matchers):
            raise InvalidSelector(self.text, "vector selector must contain at least one non-empty matcher")
        return tuple(matchers)

    def braces(self, matchers: list[Matcher], has_name: bool) -> None:
        while True:
            self.skip_space()
            if self.peek() == "}":
                self.pos += 1
                return
            if self.peek() in ('"', "'", "`"):
                label = self.string()
                self.skip_space()
                if self.peek() in (",", "}"):  # a quoted name alone: the metric name
                    if has_name:
                        raise self.fail("the metric name is given twice")
                    has_name = True
                    matchers.append(Matcher.parse("__name__", "=", label))
                    self.separator()
                    continue
            else:
                found = self.take(_LABEL_NAME)
                if found is None:
                    raise self.fail("expected a label name")
                label = found
                self.skip_space()
            op = self.take(_OPERATOR)
            if op is None:
                raise self.fail("expected one of =, !=, =~, !~")
            self.skip_space()
            value = self.string()
            try:
                matchers.append(Matcher.parse(label, op, value))
            except InvalidMatcher as exc:
                raise InvalidSelector(self.text, exc.reason) from None
            self.separator()

    def separator(self) -> None:
        self.skip_space()
        if self.peek() == ",":
            self.pos += 1
        elif self.peek() != "}":
            raise self.fail("expected ',' or '}'")


def parse_selector(text: str) -> tuple[Matcher, ...]:
    """The matchers of a series selector; :class:`InvalidSelector` when it is not one."""
    return _Parser(text).parse()
