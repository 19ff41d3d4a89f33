"""StateSet and Enum: a fixed set of named states, each on or off.

A state set exposes one sample per state, labelled with the metric's own
name, valued 1 when the state is on and 0 when off. An :class:`Enum` is a
state set with exactly one state on::

    >>> from remote_storage.instrument import Enum, Registry, StateSet
    >>> registry = Registry()
    >>> phase = Enum("phase", "Job phase.", states=["starting", "running", "stopped"], registry=registry)
    >>> phase.state("running")
    >>> registry.get_sample_value("phase", {"phase": "running"})
    1.0
    >>> features = StateSet("feature", "Enabled features.", states=["tls", "gzip"], registry=registry)
    >>> features.set("gzip")
    >>> features.states()
    {'tls': False, 'gzip': True}

OpenMetrics has a type for it (``stateset``); the text format 0.0.4 writes a
gauge, as other clients do. States are fixed when the metric is defined; an
unknown state raises :class:`~remote_storage.instrument.misuse.UnknownState`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, TypeVar, Unpack, cast

from remote_storage.instrument.family import Child, Family, FamilyOptions
from remote_storage.instrument.misuse import LABEL_NAME, InvalidLabelName, InvalidMetricName, UnknownState
from remote_storage.instrument.samples import NO_LABELS, LabelSet, Sample

__all__ = ["Enum", "EnumChild", "StateSet", "StateSetChild"]


class _States:
    """The states of a family, fixed at definition: their names, order and index."""

    __slots__ = ("index", "metric", "names")

    def __init__(self, metric: str, names: Iterable[object]) -> None:
        self.metric = metric
        self.names = tuple(map(str, names))
        self.index = {name: i for i, name in enumerate(self.names)}
        if not self.names or len(self.index) != len(self.names):
            raise ValueError(
                f"state set {metric!r} needs at least one state and no state twice, got {self.names!r}"
            )

    def find(self, state: str) -> int:
        try:
            return self.index[state]
        except KeyError:
            raise UnknownState(self.metric, state, self.names) from None


class StateSetChild(Child):
    """States, each on or off: an unlabelled :class:`StateSet` or one child of a family."""

    __slots__ = ("_on", "_state_labels", "_states")

    def __init__(
        self, states: _States | None = None, labels: LabelSet = NO_LABELS, initial: int = -1
    ) -> None:
        super().__init__(labels)
        if states is None:
            raise TypeError("a state set child needs its family's states")
        self._states = states
        self._on = [i == initial for i in range(len(states.names))]
        self._state_labels = tuple(labels.with_label(states.metric, name) for name in states.names)

    def set(self, state: str, enabled: bool = True) -> None:
        """Turn ``state`` on (or off with ``enabled=False``)."""
        index = self._states.find(state)
        lock = self._lock
        lock.acquire()
        try:
            self._on[index] = bool(enabled)
        finally:
            lock.release()

    def set_states(self, states: Mapping[str, bool]) -> None:
        """Turn several states on or off at once; the states not named keep their value."""
        indexes = [(self._states.find(state), bool(enabled)) for state, enabled in states.items()]
        lock = self._lock
        lock.acquire()
        try:
            for index, enabled in indexes:
                self._on[index] = enabled
        finally:
            lock.release()

    def states(self) -> dict[str, bool]:
        """Every state and whether it is on, in the order they were defined."""
        return dict(zip(self._states.names, list(self._on), strict=True))


class EnumChild(StateSetChild):
    """One state out of several: an unlabelled :class:`Enum` or one child of a family."""

    __slots__ = ()

    def state(self, state: str) -> None:
        """Make ``state`` the current state (and every other one off)."""
        index = self._states.find(state)
        on = [False] * len(self._on)
        on[index] = True
        lock = self._lock
        lock.acquire()
        try:
            self._on = on
        finally:
            lock.release()


StateChildT = TypeVar("StateChildT", bound=StateSetChild)


class _StateFamily(Family[StateChildT]):
    """What StateSet and Enum share: the states and how they are exposed."""

    _type = "stateset"
    _initial: ClassVar[int]

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        states: Iterable[object],
        **options: Unpack[FamilyOptions],
    ) -> None:
        self._state_names = tuple(map(str, states))
        super().__init__(name, documentation, labelnames, **options)

    def _check_label_name(self, label: str) -> None:
        super()._check_label_name(label)
        if label == self._name:
            raise InvalidLabelName(self._name, label, "a state set's own name is the label of its states")

    def _init_value(self) -> None:
        # The family name is also the states' label name, so it must be a valid one.
        if not LABEL_NAME.fullmatch(self._name):
            raise InvalidMetricName(self._name)
        self._family_states = _States(self._name, self._state_names)
        own_value = cast(StateSetChild, self)
        StateSetChild.__init__(own_value, self._family_states, self._const_labels, self._initial)

    def _collect_samples(self, children: list[StateChildT], samples: list[Sample]) -> None:
        append = samples.append
        name = self._name
        for child in children:
            for labels, on in zip(child._state_labels, list(child._on), strict=True):
                append(Sample(name, labels, 1.0 if on else 0.0))


class StateSet(_StateFamily[StateSetChild], StateSetChild):
    """A set of states, each on or off independently; all start off."""

    _initial = -1

    def _new_child(self, labels: LabelSet) -> StateSetChild:
        return StateSetChild(self._family_states, labels, self._initial)


class Enum(_StateFamily[EnumChild], EnumChild):
    """One state out of several, such as a task's phase; starts in the first state (as in other clients)."""

    _initial = 0

    def _new_child(self, labels: LabelSet) -> EnumChild:
        return EnumChild(self._family_states, labels, self._initial)
