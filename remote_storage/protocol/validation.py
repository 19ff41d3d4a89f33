"""Label-set rules applied to every series of a write request.

A label set is valid when it is non-empty, has a metric name (``__name__``),
and its names are non-empty, unique and sorted by byte order. Labels with
empty values are dropped (Prometheus never stores them, so ``{a=""}`` is the
same as no ``a``). Name characters follow the chosen scheme:

* ``utf8`` (default, as Prometheus 3): any non-empty UTF-8 string;
* ``legacy`` (as Prometheus 2): metric names ``[a-zA-Z_:][a-zA-Z0-9_:]*``,
  label names ``[a-zA-Z_][a-zA-Z0-9_]*``.

UTF-8 validity itself is enforced by the protobuf parser.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Sequence

from remote_storage.errors import InvalidLabels
from remote_storage.storage import Labels

__all__ = ["LabelValidator", "NameScheme"]

_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LEGACY_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
METRIC_NAME = "__name__"


class NameScheme(enum.Enum):
    UTF8 = "utf8"
    LEGACY = "legacy"


def _describe(pairs: Sequence[tuple[str, str]]) -> str:
    return str(Labels(pairs))


class LabelValidator:
    """Checks a decoded label set and returns it as :class:`Labels`.

    It also remembers encoded label sets that passed (``remember``/``knows``),
    so a decoder can skip decoding and checking a label set it has seen
    before; at most ``max_known`` are kept, then the memory starts over.
    """

    __slots__ = ("_known", "legacy", "max_known")

    def __init__(self, scheme: NameScheme = NameScheme.UTF8, max_known: int = 2_000_000) -> None:
        self.legacy = scheme is NameScheme.LEGACY
        self.max_known = max_known
        self._known: set[bytes] = set()

    def knows(self, encoded: bytes) -> bool:
        """True if this encoded label set passed before."""
        return encoded in self._known

    def unknown(self, keys: Collection[bytes]) -> set[bytes]:
        """The keys among ``keys`` not yet remembered (one set operation: cheap when all are known)."""
        known = self._known
        if known.issuperset(keys):  # the usual case, without building a set
            return set()
        return set(keys).difference(known)

    def remember(self, encoded: bytes) -> None:
        """Record that this encoded label set passed."""
        if len(self._known) >= self.max_known:
            self._known.clear()
        self._known.add(encoded)

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> Labels:
        if not pairs:
            raise InvalidLabels("{}", "the label set is empty")
        previous = None
        has_name = False
        for name, value in pairs:
            if not name:
                raise InvalidLabels(_describe(pairs), "a label name is empty")
            if previous is not None and name <= previous:
                reason = (
                    f"label name {name!r} appears more than once"
                    if name == previous
                    else f"label names are not sorted ({previous!r} before {name!r})"
                )
                raise InvalidLabels(_describe(pairs), reason)
            previous = name
            if name == METRIC_NAME:
                has_name = value != ""
                if self.legacy and has_name and not _LEGACY_METRIC.fullmatch(value):
                    raise InvalidLabels(_describe(pairs), f"invalid metric name {value!r}")
            elif self.legacy and not _LEGACY_LABEL.fullmatch(name):
                raise InvalidLabels(_describe(pairs), f"invalid label name {name!r}")
        if not has_name:
            raise InvalidLabels(_describe(pairs), "the series has no metric name (__name__ label)")
        if any(value == "" for _, value in pairs):
            return Labels(pair for pair in pairs if pair[1] != "")
        return Labels(pairs)
