"""Direct TLS configuration: the context is TLS 1.2+, and every operator mistake is one line naming the variable."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.config import ConfigError, load_config
from gateway.tls import TlsSettings, check_certificate, server_context

NOW = datetime.datetime.now(datetime.UTC)


def make_cert(tmp: Path, name: str, *, days: int = 30, start_days: int = -1,
              passphrase: bytes | None = None) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW + datetime.timedelta(days=start_days))
            .not_valid_after(NOW + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return cert_path, key_path


def one_line(exc: pytest.ExceptionInfo[ConfigError], variable: str) -> None:
    message = str(exc.value)
    assert "\n" not in message and message.startswith(variable + ":"), message


def test_a_good_pair_gives_a_tls12_floor(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path, "ok")
    ctx = server_context(TlsSettings(str(cert), str(key)))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_NONE


def test_client_ca_makes_client_certificates_required(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path, "ok")
    ca, _ = make_cert(tmp_path, "ca")
    ctx = server_context(TlsSettings(str(cert), str(key), client_ca_file=str(ca)))
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_an_encrypted_key_needs_its_passphrase(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path, "enc", passphrase=b"s3cret-pass")
    server_context(TlsSettings(str(cert), str(key), key_passphrase="s3cret-pass"))
    with pytest.raises(ConfigError) as exc:
        server_context(TlsSettings(str(cert), str(key), key_passphrase="wrong"))
    one_line(exc, "GIG_TLS_KEY_PASSPHRASE")


def test_mismatched_key(tmp_path: Path) -> None:
    cert, _ = make_cert(tmp_path, "a")
    _, other_key = make_cert(tmp_path, "b")
    with pytest.raises(ConfigError) as exc:
        server_context(TlsSettings(str(cert), str(other_key)))
    one_line(exc, "GIG_TLS_KEY_FILE")
    assert "does not match" in str(exc.value)


def test_expired_and_not_yet_valid(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path, "old", days=-1, start_days=-30)
    with pytest.raises(ConfigError) as exc:
        server_context(TlsSettings(str(cert), str(key)))
    one_line(exc, "GIG_TLS_CERT_FILE")
    assert "expired" in str(exc.value)
    future, _ = make_cert(tmp_path, "future", days=60, start_days=30)
    with pytest.raises(ConfigError, match="not valid before"):
        check_certificate(future.read_bytes())


def test_unreadable_files(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path, "ok")
    with pytest.raises(ConfigError) as exc:
        server_context(TlsSettings(str(tmp_path / "missing.crt"), str(key)))
    one_line(exc, "GIG_TLS_CERT_FILE")
    with pytest.raises(ConfigError) as exc:
        server_context(TlsSettings(str(cert), str(tmp_path / "missing.key")))
    one_line(exc, "GIG_TLS_KEY_FILE")
    (tmp_path / "junk.crt").write_text("junk")
    with pytest.raises(ConfigError) as exc:
        server_context(TlsSettings(str(tmp_path / "junk.crt"), str(key)))
    one_line(exc, "GIG_TLS_CERT_FILE")
    with pytest.raises(ConfigError) as exc:
        server_context(TlsSettings(str(cert), str(key), client_ca_file=str(tmp_path / "nope.pem")))
    one_line(exc, "GIG_TLS_CLIENT_CA_FILE")


def test_config_pairs_cert_and_key(tmp_path: Path) -> None:
    base = {"GIG_BEARER_TOKEN": "x" * 20, "GIG_DATA_DIR": str(tmp_path)}
    with pytest.raises(ConfigError) as exc:
        load_config({**base, "GIG_TLS_CERT_FILE": "/x.crt"})
    one_line(exc, "GIG_TLS_KEY_FILE")
    with pytest.raises(ConfigError) as exc:
        load_config({**base, "GIG_TLS_CLIENT_CA_FILE": "/ca.pem"})
    one_line(exc, "GIG_TLS_CLIENT_CA_FILE")
    config = load_config({**base, "GIG_TLS_CERT_FILE": "/x.crt", "GIG_TLS_KEY_FILE": "/x.key",
                          "GIG_TLS_KEY_PASSPHRASE": "p"})
    assert (config.tls_cert_file, config.tls_key_file, config.tls_key_passphrase) == ("/x.crt", "/x.key", "p")
    assert "p" not in repr(config).split("tls_key_file")[1].split(",")[0]
