"""bind(): every child created up front, reachable as attributes."""

from __future__ import annotations

import pytest

from remote_storage.instrument import Counter, Histogram, LabelValuesMismatch, Registry, bind


def test_attributes_are_the_children_of_the_family() -> None:
    registry = Registry()
    requests = Counter("requests", "Requests.", ["method", "result"], registry=registry)
    m = bind(requests, method=["get", "post"], result=["success", "failure"])
    assert m.get.success is requests.labels("get", "success")
    assert m.post.failure is requests.labels(method="post", result="failure")
    m.get.success.inc()
    # Every combination exists from the start, at zero.
    values = {tuple(s.labels.values()): s.value for s in next(registry.collect()).samples}
    assert values == {
        ("get", "success"): 1.0,
        ("get", "failure"): 0.0,
        ("post", "success"): 0.0,
        ("post", "failure"): 0.0,
    }


def test_mappings_name_values_that_are_not_identifiers() -> None:
    codes = Counter("responses", "Responses.", ["code"], registry=None)
    by_class = bind(codes, code={"ok": "2xx", "client_error": "4xx", "server_error": 500})
    assert by_class.ok is codes.labels("2xx")
    assert by_class["4xx"] is by_class.client_error
    assert by_class[500] is codes.labels("500")
    assert list(by_class) == ["2xx", "4xx", "500"]
    assert len(by_class) == 3
    assert repr(by_class) == "<Bound code: 2xx, 4xx, 500>"


def test_levels_follow_the_order_of_the_label_names() -> None:
    latency = Histogram("latency", "L.", ["route", "method"], registry=None)
    m = bind(latency, method=["get"], route=["home", "api"])  # given in another order
    assert m.api.get is latency.labels("api", "get")


def test_unknown_names_say_what_is_bound() -> None:
    m = bind(Counter("c", "C.", ["kind"], registry=None), kind=["a", "b"])
    with pytest.raises(
        AttributeError, match=r"label 'kind' has no bound value named 'c'; bound: \['a', 'b'\]"
    ):
        _ = m.c
    with pytest.raises(KeyError, match="bound for the values"):
        _ = m["c"]


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"kind": ["a"]}, LabelValuesMismatch, r"has label names \('kind', 'code'\)"),
        ({"kind": ["a"], "code": ["1"], "extra": ["x"]}, LabelValuesMismatch, "label names"),
        ({"kind": ["a"], "code": ["200"]}, ValueError, r"'200' cannot be an attribute name.*mapping"),
        ({"kind": ["a"], "code": ["class"]}, ValueError, "cannot be an attribute name"),
        ({"kind": ["a"], "code": ["_hidden"]}, ValueError, "cannot be an attribute name"),
        ({"kind": ["a"], "code": []}, ValueError, "at least one value"),
        ({"kind": ["a"], "code": {"x": "1", "y": "1"}}, ValueError, "same value twice"),
        ({"kind": "ab", "code": ["x"]}, TypeError, "not the string"),
    ],
)
def test_bad_bindings_are_refused(values: dict[str, object], error: type[Exception], message: str) -> None:
    family = Counter("c", "C.", ["kind", "code"], registry=None)
    with pytest.raises(error, match=message):
        bind(family, **values)  # type: ignore[arg-type]


def test_a_family_without_labels_cannot_be_bound() -> None:
    with pytest.raises(LabelValuesMismatch, match="no label names"):
        bind(Counter("c", "C.", registry=None))
