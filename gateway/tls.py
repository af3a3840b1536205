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
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

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


def check_key(pem: bytes, cert: x509.Certificate, passphrase: str | None) -> None:
    """The key decrypts with the passphrase (if any) and belongs to the certificate."""
    try:
        key = serialization.load_pem_private_key(pem, passphrase.encode() if passphrase else None)
    except TypeError:
        # Encrypted without a passphrase given, or a passphrase given for a plain key.
        name = "GIG_TLS_KEY_PASSPHRASE"
        raise ConfigError(f"{name}: GIG_TLS_KEY_FILE is encrypted and needs it" if not passphrase
                          else f"{name}: set, but GIG_TLS_KEY_FILE is not encrypted") from None
    except ValueError:
        if passphrase:
            raise ConfigError("GIG_TLS_KEY_PASSPHRASE: cannot decrypt GIG_TLS_KEY_FILE (wrong passphrase?)") from None
        raise ConfigError("GIG_TLS_KEY_FILE: not a PEM private key") from None
    except UnsupportedAlgorithm:
        raise ConfigError("GIG_TLS_KEY_FILE: unsupported key type") from None
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*raw) != cert.public_key().public_bytes(*raw):
        raise ConfigError("GIG_TLS_KEY_FILE: the private key does not match the certificate in GIG_TLS_CERT_FILE")


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """The listening socket's context; raises ConfigError naming the variable at fault."""
    cert = check_certificate(_read("GIG_TLS_CERT_FILE", settings.cert_file))
    check_key(_read("GIG_TLS_KEY_FILE", settings.key_file), cert, settings.key_passphrase)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    passphrase = (settings.key_passphrase or "").encode()
    try:
        # A callable (never None) so that OpenSSL can never fall back to prompting on a terminal.
        ctx.load_cert_chain(settings.cert_file, settings.key_file, password=lambda: passphrase)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"GIG_TLS_CERT_FILE: cannot load the certificate chain ({exc})") from None
    if settings.client_ca_file:
        _read("GIG_TLS_CLIENT_CA_FILE", settings.client_ca_file)
        try:
            ctx.load_verify_locations(cafile=settings.client_ca_file)
        except ssl.SSLError:
            raise ConfigError("GIG_TLS_CLIENT_CA_FILE: not a PEM CA bundle") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
