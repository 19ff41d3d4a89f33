"""Info: facts about the target, such as its version, carried as labels of a sample that is 1.

    >>> from remote_storage.instrument import Info, Registry, generate_latest
    >>> registry = Registry()
    >>> build = Info("build", "Build of this service.", registry=registry)
    >>> build.info({"version": "1.2.0", "revision": "abc123"})
    >>> print(generate_latest(registry).decode(), end="")
    # HELP build_info Build of this service.
    # TYPE build_info gauge
    build_info{revision="abc123",version="1.2.0"} 1.0

OpenMetrics has a type for it (``info``); the text format 0.0.4 writes a
gauge, as other clients do. Join it to other series in PromQL with
``* on (instance) group_left (version) build_info``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from remote_storage.instrument.family import Child, Family
from remote_storage.instrument.misuse import InvalidLabelName
from remote_storage.instrument.samples import NO_LABELS, LabelSet, Sample

__all__ = ["Info", "InfoChild"]


def _accept_any(labels: Mapping[str, str]) -> None:
    pass


class InfoChild(Child):
    """A set of facts: an unlabelled :class:`Info` or one child of a family."""

    __slots__ = ("_check", "_info")

    def __init__(
        self, labels: LabelSet = NO_LABELS, check: Callable[[Mapping[str, str]], None] = _accept_any
    ) -> None:
        super().__init__(labels)
        self._check = check
        self._info = labels

    def info(self, value: Mapping[str, object]) -> None:
        """Replace the facts with ``value`` (label name to value; values go through ``str()``)."""
        facts = {name: str(text) for name, text in value.items()}
        self._check(facts)
        info = LabelSet({**self._labels, **facts})
        lock = self._lock
        lock.acquire()
        try:
            self._info = info
        finally:
            lock.release()


class Info(Family[InfoChild], InfoChild):
    """Facts about the target as the labels of ``<name>_info``; a given ``_info`` suffix is dropped."""

    _type = "info"
    _suffix = "_info"

    def _init_value(self) -> None:
        InfoChild.__init__(self, self._const_labels, self._check_facts)

    def _new_child(self, labels: LabelSet) -> InfoChild:
        return InfoChild(labels, self._check_facts)

    def _check_facts(self, facts: Mapping[str, str]) -> None:
        for name in facts:
            self._check_label_name(name)
            if name in self._labelnames or name in self._const_labels:
                raise InvalidLabelName(
                    self._name, name, "it is already one of the metric's label names or const labels"
                )

    def _collect_samples(self, children: list[InfoChild], samples: list[Sample]) -> None:
        append = samples.append
        name = self._name + "_info"
        for child in children:
            append(Sample(name, child._info, 1.0))
