"""A remote-write endpoint that reads each body and stores nothing: the load generator's yardstick.

Run against it, ``remote-storage loadgen`` shows the rate it can offer
load at, as opposed to the rate a real receiver accepts::

    python -m remote_storage.loadgen.null_server --listen 127.0.0.1:9299 &
    remote-storage loadgen http://127.0.0.1:9299/api/v1/write

Every POST, whatever its path, is read to the end and answered with
``--status`` (default 204) and, for other statuses than 2xx, ``--message``
as a plain-text body. ``GET /-/ready`` answers 200 once it listens.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from remote_storage.address import parse_listen

__all__ = ["create_app", "main"]

MAX_BODY = 256 * 2**20

log = logging.getLogger("remote_storage.loadgen.null_server")


def create_app(status: int = 204, message: str = "") -> web.Application:
    """An application answering every POST with ``status`` after reading the body."""
    if not 200 <= status <= 599:
        raise ValueError(f"--status must be an HTTP status between 200 and 599, got {status}")
    text = message + "\n" if message and not 200 <= status < 300 else ""

    async def write(request: web.Request) -> web.Response:
        await request.read()
        if text:
            return web.Response(status=status, text=text)
        return web.Response(status=status)

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ready\n")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/{path:.*}", write)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m remote_storage.loadgen.null_server",
        description="A remote-write endpoint that reads every body and stores nothing.",
    )
    parser.add_argument("--listen", default="127.0.0.1:9299", help="HOST:PORT to listen on [127.0.0.1:9299]")
    parser.add_argument("--status", type=int, default=204, help="HTTP status of every answer [204]")
    parser.add_argument("--message", default="", help="body of non-2xx answers")
    args = parser.parse_args(argv)
    try:
        host, port = parse_listen(args.listen)
        app = create_app(args.status, args.message)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    log.info("listening on http://%s:%d, answering %d", host, port, args.status)
    web.run_app(app, host=host, port=port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
