"""Direct TLS: the server `SSLContext` built from `GIG_TLS_*`, checked before the gateway listens.

TLS 1.2 is the floor. Mutual TLS (`GIG_TLS_CLIENT_CA_FILE`) requires every client to present a
certificate signed by that CA; bearer tokens are still required on top. Every problem an operator
can cause — an unreadable file, a key that does not match the certificate, a wrong passphrase, an
expired certificate — is one `ConfigError` line naming the variable to fix.
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from gateway.config import ConfigError

HSTS_VALUE = "max-age=31536000"  # one year; no includeSubDomains: the gateway does not own its parent domain


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert_file: str
    key_file: str
    key_passphrase: str | None = None
    client_ca_file: str | None = None


def _read(name: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None


def check_certificate(pem: bytes, *, now: datetime.datetime | None = None) -> x509.Certificate:
    """The leaf certificate of a PEM chain, refused when it cannot be parsed or is outside its validity."""
    try:
        cert = x509.load_pem_x509_certificates(pem)[0]
    except ValueError:
        raise ConfigError("GIG_TLS_CERT_FILE: not a PEM certificate") from None
    now = now or datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc <= now:
        raise ConfigError(
            f"GIG_TLS_CERT_FILE: the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if cert.not_valid_before_utc > now:
        raise ConfigError(
            f"GIG_TLS_CERT_FILE: the certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    return cert


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """The listening socket's context; raises ConfigError naming the variable at fault."""
    check_certificate(_read("GIG_TLS_CERT_FILE", settings.cert_file))
    _read("GIG_TLS_KEY_FILE", settings.key_file)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(settings.cert_file, settings.key_file,
                            password=settings.key_passphrase.encode() if settings.key_passphrase else None)
    except ssl.SSLError as exc:
        reason = (exc.reason or str(exc)).upper()
        if "KEY_VALUES_MISMATCH" in reason or "X509_CHECK_PRIVATE_KEY" in reason:
            raise ConfigError("GIG_TLS_KEY_FILE: the private key does not match the certificate in GIG_TLS_CERT_FILE"
                              ) from None
        if "BAD_DECRYPT" in reason or "BAD PASSWORD" in reason or "PASSWORD" in reason:
            raise ConfigError("GIG_TLS_KEY_PASSPHRASE: cannot decrypt GIG_TLS_KEY_FILE (missing or wrong passphrase)"
                              ) from None
        if "PEM" in reason or "KEY" in reason:
            raise ConfigError(f"GIG_TLS_KEY_FILE: not a usable private key ({exc.reason})") from None
        raise ConfigError(f"GIG_TLS_CERT_FILE: cannot load the certificate chain ({exc.reason})") from None
    if settings.client_ca_file:
        _read("GIG_TLS_CLIENT_CA_FILE", settings.client_ca_file)
        try:
            ctx.load_verify_locations(cafile=settings.client_ca_file)
        except ssl.SSLError as exc:
            raise ConfigError(f"GIG_TLS_CLIENT_CA_FILE: not a PEM CA bundle ({exc.reason})") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
