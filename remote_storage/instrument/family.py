"""What every metric type shares: its definition, its children and its registration.

A metric defined without label names is updated directly; one defined with
label names is a family, and each combination of label values is a child
you get from :meth:`Family.labels`. A concrete metric type subclasses
:class:`Family` and its child class, so that without label names it is its
own only child.

Every update takes the lock of the value it changes, so totals are exact
whatever the number of threads. The updating methods are kept short because
they run on request paths: values live in ``__slots__``, the lock is bound
once per value, and nothing on the update path checks whether the metric is
labelled (see :class:`RefusingLock`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import ClassVar, Generic, NoReturn, Protocol, TypedDict, TypeVar, cast

from remote_storage.instrument.misuse import (
    LABEL_NAME,
    METRIC_NAME,
    InvalidLabelName,
    InvalidMetricName,
    LabelValuesMismatch,
    LabelValuesRequired,
)
from remote_storage.instrument.registry import REGISTRY, Registry
from remote_storage.instrument.samples import NO_LABELS, FamilyType, LabelSet, MetricFamily, Sample

__all__ = ["Child", "Family", "FamilyOptions", "RefusingLock"]


class FamilyOptions(TypedDict, total=False):
    """The keyword arguments every metric type takes (see :class:`Family`)."""

    namespace: str
    subsystem: str
    unit: str
    registry: Registry | None
    const_labels: Mapping[str, object] | None


class Lock(Protocol):
    def acquire(self) -> object: ...

    def release(self) -> None: ...


def wall_clock() -> float:
    """The time children record as created or reset (OpenMetrics ``_created``): :func:`time.time`.

    Read through this module at every use, so a test can replace it to move time without waiting.
    """
    return time.time()


class Child:
    """What every child has: a lock, its labels (rendered once) and when it was created."""

    __slots__ = ("_created", "_labels", "_lock")

    def __init__(self, labels: LabelSet = NO_LABELS) -> None:
        self._lock: Lock = threading.Lock()
        self._labels = labels
        self._created = wall_clock()

    def _check_updatable(self) -> None:
        """Raise if updates would be refused; a child always takes them (a labelled family does not)."""


class RefusingLock:
    """Stands in for the lock of a labelled family's own, unused value.

    A family is also a child (an unlabelled Counter is updated directly), so
    a labelled family has a value of its own that must never change. Every
    updating method takes its value's lock first; giving the family this lock
    makes updating it raise :class:`LabelValuesRequired`, without a check on
    the update path of every other value.
    """

    __slots__ = ("_labelnames", "_metric")

    def __init__(self, metric: str, labelnames: tuple[str, ...]) -> None:
        self._metric = metric
        self._labelnames = labelnames

    def acquire(self) -> NoReturn:
        raise LabelValuesRequired(self._metric, self._labelnames)

    def release(self) -> None:
        pass


ChildT = TypeVar("ChildT", bound=Child)


class Family(Generic[ChildT]):
    """A metric's definition and its children, collected as one :class:`MetricFamily`.

    ``name`` is joined as ``<namespace>_<subsystem>_<name>_<unit>`` (the
    empty parts left out, the unit only when the name lacks it); label
    names are fixed here; ``const_labels`` are added to every sample; the
    metric registers in ``registry`` (the default registry unless told
    otherwise; None for none).

    This class has no ``__slots__`` because a class cannot have two bases
    that both add slots; families are few, and the values they and their
    children update are slotted.
    """

    _type: ClassVar[FamilyType]
    _suffix: ClassVar[str] = ""  # dropped from a given name, as other clients do ("_total")
    _reserved_labelnames: ClassVar[Mapping[str, str]] = {}
    _lock: Lock
    _labels: LabelSet

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: Registry | None = REGISTRY,
        const_labels: Mapping[str, object] | None = None,
    ) -> None:
        self._name = _full_name(self._suffix, name, namespace, subsystem, unit)
        self._help = documentation
        self._unit = unit
        if isinstance(labelnames, str):
            raise TypeError(
                f"labelnames of {self._name!r} must be a sequence of names, not the string {labelnames!r}"
            )
        self._labelnames = tuple(labelnames)
        const = {label: str(value) for label, value in (const_labels or {}).items()}
        self._check_label_names((*const, *self._labelnames))
        self._const_labels = LabelSet(const)
        self._children: dict[tuple[str, ...], ChildT] = {}
        self._children_lock = threading.Lock()
        self._init_value()
        if self._labelnames:
            self._refuse_updates(RefusingLock(self._name, self._labelnames))
        if registry is not None:
            registry.register(self)

    def _init_value(self) -> None:
        """Initialise the family's own value (call the child class's ``__init__``)."""
        raise NotImplementedError

    def _refuse_updates(self, lock: RefusingLock) -> None:
        """Make every update of the family's own value raise (it has label names)."""
        self._lock = lock

    def _new_child(self, labels: LabelSet) -> ChildT:
        raise NotImplementedError

    def _collect_samples(self, children: list[ChildT], samples: list[Sample]) -> None:
        """Append the samples of every child, in order, to ``samples``."""
        raise NotImplementedError

    def _check_label_names(self, labelnames: Iterable[str]) -> None:
        seen: set[str] = set()
        for label in labelnames:
            self._check_label_name(label)
            if label in seen:
                raise InvalidLabelName(
                    self._name, label, "it is given twice (label names and const_labels included)"
                )
            seen.add(label)

    def _check_label_name(self, label: str) -> None:
        if not LABEL_NAME.fullmatch(label):
            raise InvalidLabelName(self._name, label, f"label names must match {LABEL_NAME.pattern}")
        if label.startswith("__"):
            raise InvalidLabelName(self._name, label, "names starting with '__' are reserved for Prometheus")
        if label in self._reserved_labelnames:
            raise InvalidLabelName(self._name, label, self._reserved_labelnames[label])

    def _check_updatable(self) -> None:
        if self._labelnames:
            raise LabelValuesRequired(self._name, self._labelnames)

    @property
    def name(self) -> str:
        """The family name: namespace, subsystem, name and unit joined, without type suffixes."""
        return self._name

    @property
    def labelnames(self) -> tuple[str, ...]:
        """The label names fixed when the family was defined (const labels not included)."""
        return self._labelnames

    def labels(self, *values: object, **named: object) -> ChildT:
        """Return the child for these label values, creating it on first use.

        Give the values in the order of the label names, or all by name.
        A wrong number of values or wrong names raise
        :class:`LabelValuesMismatch`.
        """
        if named:
            values = self._values_from_names(values, named)
        try:
            # Label values that are not str miss here and are converted below.
            child = self._children.get(values)  # type: ignore[arg-type]
        except TypeError:  # an unhashable value, which str() will make usable
            child = None
        if child is None:
            key = self._key(values)
            with self._children_lock:
                child = self._children.get(key)
                if child is None:
                    labels = LabelSet(
                        chain(self._const_labels.items(), zip(self._labelnames, key, strict=True))
                    )
                    child = self._children[key] = self._new_child(labels)
        return child

    def remove(self, *values: object, **named: object) -> None:
        """Forget the child for these label values, if there is one."""
        if named:
            values = self._values_from_names(values, named)
        key = self._key(values)
        with self._children_lock:
            self._children.pop(key, None)

    def clear(self) -> None:
        """Forget every child."""
        with self._children_lock:
            self._children.clear()

    def _values_from_names(self, values: tuple[object, ...], named: dict[str, object]) -> tuple[object, ...]:
        if values or len(named) != len(self._labelnames):
            raise self._mismatch(values, tuple(named))
        try:
            return tuple([named[label] for label in self._labelnames])
        except KeyError:
            raise self._mismatch(values, tuple(named)) from None

    def _key(self, values: tuple[object, ...]) -> tuple[str, ...]:
        if not self._labelnames or len(values) != len(self._labelnames):
            raise self._mismatch(values, ())
        return tuple(map(str, values))

    def _mismatch(self, values: tuple[object, ...], names: tuple[str, ...]) -> LabelValuesMismatch:
        return LabelValuesMismatch(self._name, self._labelnames, values, names)

    def describe(self) -> list[MetricFamily]:
        """The family without samples, for the registry to check names at registration."""
        return [MetricFamily(self._name, self._type, self._help, self._unit)]

    def collect(self) -> list[MetricFamily]:
        """The family with one set of samples per child (or of the metric itself, if unlabelled)."""
        family = MetricFamily(self._name, self._type, self._help, self._unit)
        if self._labelnames:
            with self._children_lock:
                children = list(self._children.values())
        else:
            # An unlabelled metric is its own only child.
            children = [cast(ChildT, self)]
        self._collect_samples(children, family.samples)
        return [family]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r}, labelnames={self._labelnames!r})"


def _full_name(suffix: str, name: str, namespace: str, subsystem: str, unit: str) -> str:
    """Join namespace, subsystem, name and unit as other clients do, and validate the result."""
    if not name:
        raise InvalidMetricName(name)
    full_name = "_".join(part for part in (namespace, subsystem, name) if part)
    if suffix and full_name.endswith(suffix):
        full_name = full_name[: -len(suffix)]
    if unit and not full_name.endswith("_" + unit):
        full_name += "_" + unit
    if not METRIC_NAME.fullmatch(full_name):
        raise InvalidMetricName(full_name)
    return full_name
