"""The loadgen command line: numbers, URLs, option errors, and wiring into a parent command."""

from __future__ import annotations

import argparse

import pytest

from remote_storage.loadgen import cli


@pytest.mark.parametrize(
    ("text", "value"),
    [("2000", 2000), ("100_000", 100_000), ("250k", 250_000), ("1.5M", 1_500_000), ("2G", 2e9)],
)
def test_counts(text: str, value: float) -> None:
    assert cli.parse_count(text) == value


@pytest.mark.parametrize("text", ["", "-5", "1e6", "ten", "5x"])
def test_bad_counts(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_count(text)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9201", "http://127.0.0.1:9201/api/v1/write"),
        ("http://127.0.0.1:9201/", "http://127.0.0.1:9201/api/v1/write"),
        ("https://example.org/prom/push", "https://example.org/prom/push"),
    ],
)
def test_write_url(url: str, expected: str) -> None:
    assert cli.write_url(url) == expected


def test_defaults() -> None:
    args = cli.build_parser().parse_args(["loadgen", "http://127.0.0.1:9201"])
    spec, options = cli._settings(args)
    assert (spec.series, spec.labels, spec.series_per_request, spec.samples_per_series) == (
        100_000,
        10,
        2_000,
        1,
    )
    assert (spec.churn, spec.protocol.value, spec.values.value, spec.interval_ms) == (
        0.0,
        "v1",
        "realistic",
        15_000,
    )
    assert (options.concurrency, options.rate, options.request_limit, options.duration) == (
        8,
        None,
        4_000,
        None,
    )


def test_a_duration_alone_lifts_the_default_request_limit() -> None:
    args = cli.build_parser().parse_args(
        ["loadgen", "http://h:1", "--duration", "5m", "--header", "X-Scope-OrgID=a"]
    )
    _, options = cli._settings(args)
    assert (options.request_limit, options.duration, dict(options.headers)) == (
        None,
        300.0,
        {"X-Scope-OrgID": "a"},
    )
    args = cli.build_parser().parse_args(["loadgen", "http://h:1", "--duration", "5m", "--requests", "10"])
    assert cli._settings(args)[1].request_limit == 10


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--labels", "2"], "--labels"),
        (["--concurrency", "0"], "--concurrency"),
        (["--requests", "0"], "--requests"),
        (["--rate", "0"], "--rate"),
        (["--buffer", "1KiB"], "--buffer"),
    ],
)
def test_unusable_options_exit_2_naming_the_option(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["http://127.0.0.1:1", *argv]) == 2
    assert flag in capsys.readouterr().err


def test_url_must_be_http() -> None:
    assert cli.main(["ftp://example.org"]) == 2


def test_add_parser_wires_the_subcommand_into_a_parent_command() -> None:
    parent = argparse.ArgumentParser(prog="remote-storage")
    commands = parent.add_subparsers(dest="command", required=True)
    cli.add_parser(commands)
    args = parent.parse_args(["loadgen", "http://127.0.0.1:9201", "--series", "20k", "--protocol", "v2"])
    assert args.command == "loadgen"
    spec, options = cli._settings(args)
    assert (spec.series, spec.protocol.value, options.url) == (
        20_000,
        "v2",
        "http://127.0.0.1:9201/api/v1/write",
    )


def test_every_option_is_documented_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    parent = argparse.ArgumentParser(prog="remote-storage")
    commands = parent.add_subparsers(dest="command")
    cli.add_parser(commands)
    parser = commands.choices["loadgen"]
    for action in parser._actions:
        assert action.help, action.option_strings
    text = parser.format_help()
    for option in (
        "--series",
        "--labels",
        "--churn",
        "--protocol",
        "--values",
        "--rate",
        "--duration",
        "--json",
    ):
        assert option in text


def test_a_run_of_known_length_ends_its_sample_time_at_the_start() -> None:
    from remote_storage.loadgen.cli import first_scrape_ms
    from remote_storage.loadgen.workload import Workload, WorkloadSpec

    now = 1_800_000_000_000
    spec = WorkloadSpec(series=100_000, series_per_request=2_000, start_ms=now)
    start = first_scrape_ms(spec, 4_000, now)
    assert start == now - 80 * 15_000  # 80 rounds of one scrape each
    workload = Workload(WorkloadSpec(series=100_000, series_per_request=2_000, start_ms=start))
    last = workload.batch(3_999)
    assert last.round == 79
    newest = max(ts for series in workload.expected(3_999) for ts in series.timestamps)
    assert newest <= now  # every sample at or before the start of the run
    assert first_scrape_ms(spec, None, now) == now  # bounded by --duration only: from now
