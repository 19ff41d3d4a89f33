"""Children bound up front for label values known when the code is written.

``family.labels(...)`` looks the child up on every call. When every value a
label can take is known in advance (methods, outcomes, status classes),
:func:`bind` creates all the children once and returns an object whose
attributes are the children, one level per label, so a request path does
an attribute access instead of a lookup (the "static metric" of the Rust
client)::

    >>> from remote_storage.instrument import Counter, Registry, bind
    >>> registry = Registry()
    >>> requests = Counter("requests", "Requests.", ["method", "result"], registry=registry)
    >>> m = bind(requests, method=["get", "post"], result=["success", "failure"])
    >>> m.get.success.inc()
    >>> m.post.failure.inc(2)
    >>> registry.get_sample_value("requests_total", {"method": "post", "result": "failure"})
    2.0

Label values that are not Python identifiers get attribute names from a
mapping, and every level can also be indexed by label value::

    >>> codes = Counter("responses", "Responses.", ["code"], registry=registry)
    >>> by_class = bind(codes, code={"ok": "2xx", "client_error": "4xx"})
    >>> by_class.ok.inc()
    >>> by_class["4xx"] is by_class.client_error
    True

The children stay ordinary children of the family: they are exposed from
the start (with zero values), and removing one from the family detaches the
bound object from it.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from remote_storage.instrument.family import Family
from remote_storage.instrument.misuse import LabelValuesMismatch

__all__ = ["Bound", "bind"]


class Bound:
    """One level of bound children: attribute name -> child (last label) or next level.

    Attribute access is plain instance attribute lookup; ``bound[value]``
    finds the same object by label value; iteration yields the label values
    in the order given.
    """

    def __init__(self, label: str, by_value: dict[str, Any], by_attribute: dict[str, Any]) -> None:
        self.__dict__.update(by_attribute)
        # Private (name-mangled) names cannot clash with bound names, which never start with "_".
        self.__label = label
        self.__by_value = by_value

    def __getitem__(self, value: object) -> Any:
        try:
            return self.__by_value[str(value)]
        except KeyError:
            raise KeyError(
                f"label {self.__label!r} was bound for the values {tuple(self.__by_value)!r}, not {value!r}"
            ) from None

    def __getattr__(self, name: str) -> Any:
        # Only called when the attribute does not exist.
        names = [key for key in self.__dict__ if not key.startswith("_Bound__")]
        raise AttributeError(f"label {self.__label!r} has no bound value named {name!r}; bound: {names!r}")

    def __iter__(self) -> Iterator[str]:
        return iter(self.__by_value)

    def __len__(self) -> int:
        return len(self.__by_value)

    def __repr__(self) -> str:
        return f"<Bound {self.__label}: {', '.join(self.__by_value)}>"


def _attribute_names(label: str, values: Iterable[object] | Mapping[str, object]) -> dict[str, str]:
    """Attribute name -> label value for one label's allowed values."""
    if isinstance(values, str):
        raise TypeError(f"values of label {label!r} must be a list or a mapping, not the string {values!r}")
    if isinstance(values, Mapping):
        pairs = {str(name): str(value) for name, value in values.items()}
    else:
        pairs = {str(value): str(value) for value in values}
    if not pairs:
        raise ValueError(f"label {label!r} needs at least one value to bind")
    if len(set(pairs.values())) != len(pairs):
        raise ValueError(f"label {label!r} is bound to the same value twice: {list(pairs.values())!r}")
    for name, value in pairs.items():
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            raise ValueError(
                f"label {label!r}: {name!r} cannot be an attribute name (identifiers not starting with "
                f"'_' only); give a mapping such as {{'name_{value}': {value!r}}}"
            )
    return pairs


def bind(family: Family[Any], /, **values: Iterable[object] | Mapping[str, object]) -> Any:
    """Create every child of ``family`` for the given label values and return them as attributes.

    Give every label of the family, by name, as a list of values (each must
    be a Python identifier) or a mapping from attribute name to value. The
    result is a :class:`Bound`, typed ``Any`` since its attributes are only
    known at run time.
    """
    labelnames = family.labelnames
    if set(values) != set(labelnames) or not labelnames:
        raise LabelValuesMismatch(family.name, labelnames, (), tuple(values))
    levels = [(label, _attribute_names(label, values[label])) for label in labelnames]
    return _level(family, levels, ())


def _level(family: Family[Any], levels: list[tuple[str, dict[str, str]]], prefix: tuple[str, ...]) -> Any:
    (label, names), rest = levels[0], levels[1:]
    by_value: dict[str, Any] = {}
    by_attribute: dict[str, Any] = {}
    for name, value in names.items():
        key = (*prefix, value)
        node = _level(family, rest, key) if rest else family.labels(*key)
        by_value[value] = by_attribute[name] = node
    return Bound(label, by_value, by_attribute)
