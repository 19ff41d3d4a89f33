"""HTTPS for ``remote-storage serve``: the server's TLS context, built and checked at start.

``--tls-cert-file`` and ``--tls-key-file`` turn HTTPS on (PEM files; the
certificate file may hold the chain, leaf first). ``--tls-client-ca-file``
also asks every client for a certificate signed by one of the CAs in that
file and refuses the connection (during the TLS handshake, before any HTTP)
without one. TLS 1.2 is the oldest version accepted; ciphers are OpenSSL's
defaults as Python sets them (forward-secret AEAD suites first).

Every problem is a :class:`~remote_storage.config.ConfigError` naming the
flag: a missing or unreadable file, a file without a certificate or key, an
encrypted key (it would need a passphrase at every start), a key that does
not belong to the certificate.
"""

from __future__ import annotations

import ssl

from remote_storage.config import ConfigError, Settings

__all__ = ["describe_tls", "server_ssl_context"]

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


def server_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context to serve with, or None when ``--tls-cert-file`` is unset (plain HTTP)."""
    if not settings.tls_cert_file:
        return None
    cert_file, key_file = settings.tls_cert_file, settings.tls_key_file
    _check_certificates("--tls-cert-file", cert_file)
    _read("--tls-key-file", key_file)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except _EncryptedKey:
        raise ConfigError(
            f"--tls-key-file: {key_file} is encrypted; give the server an unencrypted key "
            "(e.g. openssl pkey -in KEY -out KEY.plain) readable only by its user"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason in ("KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"):
            raise ConfigError(
                f"--tls-key-file: {key_file} is not the private key of the certificate in {cert_file}"
            ) from None
        raise ConfigError(f"--tls-key-file: {key_file} holds no usable PEM private key ({exc})") from None
    if settings.tls_client_ca_file:
        ca_file = settings.tls_client_ca_file
        _check_certificates("--tls-client-ca-file", ca_file)
        context.load_verify_locations(cafile=ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def describe_tls(settings: Settings) -> str:
    """One phrase for the start-up log: ``TLS off`` or ``TLS on, client certificates off|required``."""
    if not settings.tls_cert_file:
        return "TLS off"
    clients = "required" if settings.tls_client_ca_file else "off"
    return f"TLS on, client certificates {clients}"


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> bytes:
    raise _EncryptedKey


def _read(flag: str, path: str) -> str:
    try:
        with open(path, "rb") as file:
            return file.read().decode("ascii", "replace")
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None


def _check_certificates(flag: str, path: str) -> None:
    """Fail unless ``path`` is readable and holds at least one PEM certificate."""
    text = _read(flag, path)
    try:
        # Parses every certificate in the text (other PEM blocks, such as a key, are skipped).
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{flag}: {path} holds no usable PEM certificate ({exc})") from None
