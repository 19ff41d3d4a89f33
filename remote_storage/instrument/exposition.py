"""Rendering collected metrics as text, and choosing the format for a scrape.

Two formats: the Prometheus text format 0.0.4 (:func:`generate_latest`),
which every Prometheus version reads, and OpenMetrics 1.0
(:func:`~remote_storage.instrument.openmetrics.generate_openmetrics`), which
adds units, ``_created`` series and the info and state set types.
:func:`choose_encoder` picks one from a scrape's ``Accept`` header::

    >>> from remote_storage.instrument import Counter, Registry, choose_encoder
    >>> registry = Registry()
    >>> Counter("jobs", "Jobs done.", registry=registry).inc()
    >>> encoder, content_type = choose_encoder("text/plain")
    >>> print(encoder(registry).decode(), end="")
    # HELP jobs_total Jobs done.
    # TYPE jobs_total counter
    jobs_total 1.0
    >>> choose_encoder("application/openmetrics-text; version=1.0.0")[1]
    'application/openmetrics-text; version=1.0.0; charset=utf-8'
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable

from remote_storage.instrument.openmetrics import CONTENT_TYPE_OPENMETRICS, generate_openmetrics
from remote_storage.instrument.registry import REGISTRY, Collector
from remote_storage.instrument.samples import LabelSet
from remote_storage.instrument.textformat import escape_help, format_float, render_labels

__all__ = [
    "CONTENT_TYPE_LATEST",
    "Encoder",
    "choose_encoder",
    "format_float",
    "generate_latest",
    "write_to_textfile",
]

CONTENT_TYPE_LATEST = "text/plain; version=0.0.4; charset=utf-8"
"""Content type of :func:`generate_latest`'s output."""

Encoder = Callable[[Collector], bytes]
"""Renders everything a collector (usually a Registry) yields as one response body."""

# The 0.0.4 format knows fewer types than OpenMetrics; these are the closest it can say.
_TYPE_NAMES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "gaugehistogram": "histogram",
    "summary": "summary",
    "info": "gauge",
    "stateset": "gauge",
    "unknown": "untyped",
}
# 0.0.4 names a counter family after its sample, OpenMetrics after the family.
_FAMILY_SUFFIXES = {"counter": "_total", "info": "_info"}


def generate_latest(registry: Collector = REGISTRY) -> bytes:
    """Render every family ``registry`` collects in the Prometheus text format 0.0.4.

    ``_created`` times are left out: 0.0.4 has no place for them, and other
    clients that write them make each one a series of its own.
    """
    lines: list[str] = []
    append = lines.append
    for family in registry.collect():
        name = family.name + _FAMILY_SUFFIXES.get(family.type, "")
        append(f"# HELP {name} {escape_help(family.help)}\n# TYPE {name} {_TYPE_NAMES[family.type]}\n")
        for sample_name, labels, value, _ in family.samples:
            text = labels.text if isinstance(labels, LabelSet) else render_labels(labels)
            append(f"{sample_name}{text} {format_float(value)}\n")
    return "".join(lines).encode("utf-8")


def write_to_textfile(
    path: str | os.PathLike[str], registry: Collector = REGISTRY, tmpdir: str | None = None
) -> None:
    """Write :func:`generate_latest` of ``registry`` to ``path`` atomically (node_exporter's textfile).

    The text goes to a new temporary file in ``tmpdir`` (default: the
    directory of ``path``; it must be on the same file system), which is then
    renamed over ``path``: a reader sees the old file or the new one, never
    a part. The file gets the usual permissions (0666 less the umask); the
    temporary file is removed if anything fails.
    """
    target = os.fspath(path)
    directory = tmpdir if tmpdir is not None else os.path.dirname(os.path.abspath(target))
    body = generate_latest(registry)
    name = f".{os.path.basename(target)}.{os.getpid()}.{threading.get_ident()}.tmp"
    temporary = os.path.join(directory, name)
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(descriptor, "wb") as file:
            file.write(body)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


# Media types a scrape may ask for, with the versions each encoder can serve.
_OFFERS: dict[str, tuple[tuple[str | None, ...], Encoder, str]] = {
    "application/openmetrics-text": (
        (None, "1.0.0", "0.0.1"),
        generate_openmetrics,
        CONTENT_TYPE_OPENMETRICS,
    ),
    "text/plain": ((None, "0.0.4"), generate_latest, CONTENT_TYPE_LATEST),
    "text/*": ((None,), generate_latest, CONTENT_TYPE_LATEST),
    "*/*": ((None,), generate_latest, CONTENT_TYPE_LATEST),
}


def choose_encoder(accept_header: str) -> tuple[Encoder, str]:
    """Pick the exposition format for a scrape from its ``Accept`` header.

    Returns the encoder and the ``Content-Type`` to send with its output.
    The acceptable type with the highest ``q`` wins (the first one on a
    tie): OpenMetrics for ``application/openmetrics-text`` (versions 1.0.0
    and 0.0.1, which Prometheus asks for first), the text format 0.0.4
    otherwise, including for an empty or unusable header.
    """
    best_q = 0.0
    best: tuple[Encoder, str] = (generate_latest, CONTENT_TYPE_LATEST)
    for media_range in accept_header.split(","):
        media_type, *parameters = media_range.split(";")
        offer = _OFFERS.get(media_type.strip().lower())
        if offer is None:
            continue
        q, version = 1.0, None
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"')
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            elif key == "version":
                version = value
        versions, encoder, content_type = offer
        if version in versions and q > best_q:
            best_q, best = q, (encoder, content_type)
    return best
