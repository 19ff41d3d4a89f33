"""The endpoint under check: where to POST, with which headers, credentials and TLS settings.

A plain blocking HTTP client (the checks run one after another): every
answer, 2xx or not, comes back as an :class:`Answer`; only a failure to get
an answer at all (refused connection, TLS error, timeout) raises
:class:`Unreachable`.
"""

from __future__ import annotations

import base64
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "READ_PATH",
    "WRITE_PATH",
    "Answer",
    "Endpoint",
    "Unreachable",
    "basic_auth_header",
    "bearer_header",
    "client_ssl_context",
    "endpoint_url",
]

WRITE_PATH = "/api/v1/write"
READ_PATH = "/api/v1/read"
_BODY_IN_DETAILS = 200


class Unreachable(Exception):
    """No HTTP answer came back (connection refused or reset, TLS failure, timeout)."""

    def __init__(self, url: str, reason: object) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"no answer from {url}: {reason}")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers (names lower-cased) and the body as received."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def describe(self) -> str:
        """``"400: <the first line of the body>"``, for the detail column of a check."""
        text = self.body[:_BODY_IN_DETAILS].decode("utf-8", "replace").strip().splitlines()
        return f"{self.status}: {text[0]}" if text else str(self.status)


def endpoint_url(base: str, path: str) -> str:
    """``base`` with ``path`` as its path when it has none (``http://host:9201`` -> ``.../api/v1/write``)."""
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"invalid URL {base!r}: use http://HOST:PORT or https://HOST:PORT")
    if parts.path in ("", "/"):
        parts = parts._replace(path=path)
    return urlunsplit(parts)


def bearer_header(token_file: Path) -> str:
    """The ``Authorization`` value for the token in ``token_file`` (surrounding whitespace dropped)."""
    token = token_file.read_text().strip()
    if not token:
        raise ValueError(f"the bearer token file {token_file} is empty: put the token in it")
    return f"Bearer {token}"


def basic_auth_header(spec: str) -> str:
    """The ``Authorization`` value for ``USER:PASSWORD_FILE`` (the password is the file's first line)."""
    user, sep, password_file = spec.partition(":")
    if not sep or not user or not password_file:
        raise ValueError(f"invalid --basic-auth {spec!r}: use USER:PASSWORD_FILE")
    lines = Path(password_file).read_text().splitlines()
    password = lines[0] if lines else ""
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Basic {credentials}"


def client_ssl_context(
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    insecure_skip_verify: bool = False,
) -> ssl.SSLContext:
    """The TLS settings for ``https://`` endpoints (the system's CAs unless ``ca_file`` is given)."""
    context = ssl.create_default_context(cafile=ca_file)
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file)
    if insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class Endpoint:
    """A remote-write URL and a remote-read URL, and what every request to them carries."""

    write_url: str
    read_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None
    timeout: float = 30.0

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST ``body``; the answer whatever its status, or :class:`Unreachable`."""
        request = urllib.request.Request(url, data=body, method="POST")
        for name, value in {**self.headers, **headers}.items():
            request.add_header(name, value)
        handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
        if self.ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=self.ssl_context))
        opener = urllib.request.build_opener(*handlers)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return Answer(response.status, _lower(response.headers.items()), response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return Answer(exc.code, _lower(exc.headers.items()), exc.read())
        except (OSError, ValueError) as exc:  # URLError, timeouts, TLS errors, resets
            raise Unreachable(url, getattr(exc, "reason", exc)) from None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer of its own here (a remote-write sender does not follow one)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}
