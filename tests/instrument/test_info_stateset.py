"""Info, StateSet and Enum: values, validation and their samples."""

from __future__ import annotations

import pytest

from remote_storage.instrument import (
    Enum,
    Info,
    InvalidLabelName,
    InvalidMetricName,
    LabelValuesRequired,
    Registry,
    StateSet,
    UnknownState,
)


def samples(registry: Registry) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, dict(s.labels), s.value) for family in registry.collect() for s in family.samples]


def test_info_replaces_its_facts() -> None:
    registry = Registry()
    build = Info("build_info", "Build.", ["component"], const_labels={"app": "rs"}, registry=registry)
    build.labels("server").info({"version": "1.0", "revision": 7})
    build.labels("server").info({"version": "1.1"})
    assert samples(registry) == [
        ("build_info", {"app": "rs", "component": "server", "version": "1.1"}, 1.0),
    ]
    [family] = registry.collect()
    assert (family.name, family.type) == ("build", "info")


def test_unlabelled_info_before_any_facts() -> None:
    registry = Registry()
    Info("build", "Build.", registry=registry)
    assert samples(registry) == [("build_info", {}, 1.0)]


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        ({"component": "x"}, "already one of the metric's label names"),
        ({"app": "x"}, "already one of the metric's label names"),
        ({"bad-name": "x"}, "must match"),
        ({"__reserved": "x"}, "reserved for Prometheus"),
    ],
)
def test_info_refuses_clashing_or_invalid_fact_names(facts: dict[str, str], reason: str) -> None:
    build = Info("build", "Build.", ["component"], const_labels={"app": "rs"}, registry=None)
    with pytest.raises(InvalidLabelName, match=reason) as caught:
        build.labels("server").info(facts)
    assert caught.value.metric == "build"


def test_info_of_a_labelled_family_itself_is_refused() -> None:
    with pytest.raises(LabelValuesRequired):
        Info("build", "Build.", ["component"], registry=None).info({"version": "1"})


def test_state_set_turns_states_on_and_off() -> None:
    registry = Registry()
    features = StateSet("feature", "Features.", ["server"], states=["tls", "gzip", "h2"], registry=registry)
    child = features.labels("a")
    assert child.states() == {"tls": False, "gzip": False, "h2": False}
    child.set("tls")
    child.set_states({"gzip": True, "h2": False})
    child.set("tls", False)
    assert child.states() == {"tls": False, "gzip": True, "h2": False}
    assert samples(registry) == [
        ("feature", {"server": "a", "feature": "tls"}, 0.0),
        ("feature", {"server": "a", "feature": "gzip"}, 1.0),
        ("feature", {"server": "a", "feature": "h2"}, 0.0),
    ]
    [family] = registry.collect()
    assert family.type == "stateset"


def test_enum_has_exactly_one_state() -> None:
    registry = Registry()
    phase = Enum("phase", "Phase.", states=["starting", "running", "stopped"], registry=registry)
    assert phase.states() == {"starting": True, "running": False, "stopped": False}
    phase.state("stopped")
    assert [value for _, _, value in samples(registry)] == [0.0, 0.0, 1.0]


def test_unknown_states_are_refused_with_the_known_ones() -> None:
    phase = Enum("phase", "Phase.", ["job"], states=["starting", "running"], registry=None)
    with pytest.raises(UnknownState, match=r"'phase' has no state 'done'.*\('starting', 'running'\)"):
        phase.labels("x").state("done")
    features = StateSet("feature", "Features.", states=["tls"], registry=None)
    with pytest.raises(UnknownState):
        features.set("gzip")
    with pytest.raises(UnknownState):
        features.set_states({"tls": True, "gzip": True})
    assert features.states() == {"tls": False}  # nothing applied


@pytest.mark.parametrize("states", [[], ["a", "a"]])
def test_states_must_be_distinct_and_present(states: list[str]) -> None:
    with pytest.raises(ValueError, match="at least one state and no state twice"):
        StateSet("s", "S.", states=states, registry=None)


def test_state_set_name_must_be_a_label_name_unused_by_its_labels() -> None:
    with pytest.raises(InvalidMetricName):
        StateSet("job:state", "S.", states=["a"], registry=None)
    with pytest.raises(InvalidLabelName, match="own name is the label of its states"):
        StateSet("state", "S.", ["state"], states=["a"], registry=None)
