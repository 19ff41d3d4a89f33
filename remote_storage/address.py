"""Listen addresses as operators write them: ``127.0.0.1:9201``, ``[::1]:9201``, ``:9201``, ``9201``.

Stands alone (no other module of the package), so that the service's
settings and the instrumentation's exporter parse addresses the same way
without the exporter depending on the service's configuration.
"""

from __future__ import annotations

__all__ = ["parse_listen"]


def parse_listen(text: str | int) -> tuple[str, int]:
    """``"127.0.0.1:9201"`` or ``"[::1]:9201"`` -> (host, port).

    ``":9201"``, ``"9201"`` and the int ``9201`` mean all interfaces.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        text = f":{text}"
    elif isinstance(text, str) and text.strip().isdigit():
        text = f":{text.strip()}"
    if not isinstance(text, str):
        raise TypeError(f"a listen address is a HOST:PORT string or a port number, not {text!r}")
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"invalid listen address {text!r}: use HOST:PORT, e.g. 127.0.0.1:9201")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid port {port} in {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, port
