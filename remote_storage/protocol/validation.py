"""Label-set rules applied to every series of a write request.

A label set is valid when it is non-empty, has a metric name (``__name__``),
and its names are non-empty and unique. Names that arrive out of order are
sorted (some client libraries send them in the order the user wrote them;
Prometheus sorts them when it ingests too); a name that appears twice is
refused, since either value would be a guess. Labels with empty values are
dropped (Prometheus never stores them, so ``{a=""}`` is the same as no
``a``). Name characters follow the chosen scheme:

* ``utf8`` (default, as Prometheus 3): any non-empty UTF-8 string;
* ``legacy`` (as Prometheus 2): metric names ``[a-zA-Z_:][a-zA-Z0-9_:]*``,
  label names ``[a-zA-Z_][a-zA-Z0-9_]*``.

Sizes are checked against :class:`~.limits.WriteLimits`: bytes of each name
and value (the metric name counts as a value) and labels per series. UTF-8
validity itself is enforced by the protobuf parser.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Sequence
from itertools import pairwise
from operator import itemgetter

from remote_storage.errors import InvalidLabels, LimitExceeded
from remote_storage.protocol.limits import WriteLimits, describe_labels, utf8_length
from remote_storage.storage import Labels

__all__ = ["LabelValidator", "NameScheme"]

_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LEGACY_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
METRIC_NAME = "__name__"


class NameScheme(enum.Enum):
    UTF8 = "utf8"
    LEGACY = "legacy"


_describe = describe_labels
_NAME_KEY = itemgetter(0)


class LabelValidator:
    """Checks a decoded label set and returns it as :class:`Labels`.

    It also remembers encoded label sets that passed (``remember``/``knows``),
    so a decoder can skip decoding and checking a label set it has seen
    before; at most ``max_known`` are kept, then the memory starts over.
    """

    __slots__ = ("_known", "legacy", "limits", "max_known")

    def __init__(
        self,
        scheme: NameScheme = NameScheme.UTF8,
        max_known: int = 2_000_000,
        limits: WriteLimits | None = None,
    ) -> None:
        self.legacy = scheme is NameScheme.LEGACY
        self.max_known = max_known
        self.limits = WriteLimits() if limits is None else limits
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
        limits = self.limits
        if limits.max_labels_per_series and len(pairs) > limits.max_labels_per_series:
            raise LimitExceeded(
                "too_many_labels",
                f"series {_describe(pairs)} has {len(pairs)} labels, above the limit of "
                f"{limits.max_labels_per_series} (raise --max-labels-per-series)",
                limits.max_labels_per_series,
                "--max-labels-per-series",
            )
        max_name, max_value = limits.max_label_name_length, limits.max_label_value_length
        previous = ""
        ordered = True
        has_name = False
        for name, value in pairs:
            if not name:
                raise InvalidLabels(_describe(pairs), "a label name is empty")
            # len(text) * 4 bounds its UTF-8 bytes: most labels are settled without encoding them
            if max_name and len(name) * 4 > max_name and utf8_length(name) > max_name:
                self._too_long(pairs, "name", name, name, max_name, "--max-label-name-length")
            if max_value and len(value) * 4 > max_value and utf8_length(value) > max_value:
                self._too_long(pairs, "value", name, value, max_value, "--max-label-value-length")
            if name <= previous:
                if name == previous:
                    raise InvalidLabels(_describe(pairs), f"label name {name!r} appears more than once")
                ordered = False
            previous = name
            if name == METRIC_NAME:
                has_name = value != ""
                if self.legacy and has_name and not _LEGACY_METRIC.fullmatch(value):
                    raise InvalidLabels(_describe(pairs), f"invalid metric name {value!r}")
            elif self.legacy and not _LEGACY_LABEL.fullmatch(name):
                raise InvalidLabels(_describe(pairs), f"invalid label name {name!r}")
        if not has_name:
            raise InvalidLabels(_describe(pairs), "the series has no metric name (__name__ label)")
        if not ordered:
            pairs = sorted(pairs, key=_NAME_KEY)
            for (name, _), (following, _) in pairwise(pairs):
                if name == following:
                    raise InvalidLabels(_describe(pairs), f"label name {name!r} appears more than once")
        if any(value == "" for _, value in pairs):
            return Labels(pair for pair in pairs if pair[1] != "")
        return Labels(pairs)

    @staticmethod
    def _too_long(
        pairs: Sequence[tuple[str, str]], part: str, name: str, text: str, limit: int, flag: str
    ) -> None:
        length = utf8_length(text)
        raise LimitExceeded(
            f"label_{part}_too_long",
            f"series {_describe(pairs)}: the label {part} of {name[:64]!r} is {length} bytes, "
            f"above the limit of {limit} (raise {flag})",
            limit,
            flag,
        )
