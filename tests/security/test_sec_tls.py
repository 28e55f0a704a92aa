"""Mutual TLS on loopback with a real TLS server."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from sec_helpers import self_signed, tls_server

from prefetch.security.errors import CertificateRejected, CertReason
from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki
from prefetch.security.tls import (
    check_client_certificate,
    client_ssl_context,
    mtls_session,
    server_ssl_context,
)
from prefetch.security.trust import TrustStore


def _talk(ctx: ssl.SSLContext, port: int, host: str = "localhost") -> str:
    """Connect, send a request, return the body or the error class name."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as conn,
        ):
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
            if not data:
                return "closed"
            return data.split(b"\r\n\r\n", 1)[1].decode()
    except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
        return f"error:{type(exc).__name__}"


@pytest.fixture(scope="module")
def server_ctx(pki: DevPki, creds: dict[str, Credential]) -> ssl.SSLContext:
    return server_ssl_context(creds["simulator"], pki.ca_bundle, crl_file=pki.crl_bundle)


def _uzi(der: bytes | None, trust: TrustStore) -> str:
    return check_client_certificate(der, trust, dt.datetime.now(dt.UTC)).uzi_number


def test_mutual_tls_succeeds_and_identifies_the_client(
    pki: DevPki, creds: dict[str, Credential], trust: TrustStore, server_ctx: ssl.SSLContext
) -> None:
    ctx = client_ssl_context(creds["hospital"], pki.ca_bundle)
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    with tls_server(server_ctx, lambda der: _uzi(der, trust)) as (port, log):
        assert _talk(ctx, port) == pki.hospital.uzi_number
        assert _talk(ctx, port, host="127.0.0.1") == pki.hospital.uzi_number
    assert log.outcomes == [pki.hospital.uzi_number] * 2


@pytest.mark.parametrize("label", ["expired", "revoked", "foreign", "self-signed", "none"])
def test_server_refuses_bad_client_certificates(
    pki: DevPki,
    creds: dict[str, Credential],
    trust: TrustStore,
    server_ctx: ssl.SSLContext,
    key2048: rsa.RSAPrivateKey,
    tmp_path: Path,
    label: str,
) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(pki.ca_bundle))
    if label == "self-signed":
        own = Credential.from_key(key2048, self_signed(key2048, dt.datetime.now(dt.UTC)))
        ctx = client_ssl_context(own, pki.ca_bundle)
    elif label != "none":
        ctx = client_ssl_context(creds[label], pki.ca_bundle)
    with tls_server(server_ctx, lambda der: _uzi(der, trust)) as (port, log):
        answer = _talk(ctx, port)
        assert log.done.wait(5)
    assert answer.startswith("error:") or answer == "closed"
    assert log.outcomes[0].startswith("handshake:")


@pytest.mark.parametrize(
    ("label", "reason"),
    [("revoked", CertReason.REVOKED), ("specialist", CertReason.NOT_UZI)],
)
def test_application_check_without_crl_in_the_handshake(
    pki: DevPki,
    creds: dict[str, Credential],
    trust: TrustStore,
    label: str,
    reason: CertReason,
) -> None:
    lenient = server_ssl_context(creds["simulator"], pki.ca_bundle)  # no CRL in the handshake
    with tls_server(lenient, lambda der: _uzi(der, trust)) as (port, log):
        _talk(client_ssl_context(creds[label], pki.ca_bundle), port)
        assert log.done.wait(5)
    assert len(log.outcomes) == 1
    assert log.outcomes[0].startswith(f"refused:certificate rejected: {reason.value}")


def test_check_client_certificate_reasons(trust: TrustStore) -> None:
    now = dt.datetime.now(dt.UTC)
    for der, reason in [(None, CertReason.MISSING), (b"garbage", CertReason.MALFORMED)]:
        with pytest.raises(CertificateRejected) as info:
            check_client_certificate(der, trust, now)
        assert info.value.reason is reason


def test_client_refuses_server_from_another_ca(
    pki: DevPki, creds: dict[str, Credential], server_ctx: ssl.SSLContext
) -> None:
    wrong_anchor = client_ssl_context(creds["hospital"], pki.foreign_ca)
    with tls_server(server_ctx, lambda der: "served") as (port, log):
        assert _talk(wrong_anchor, port).startswith("error:SSLCertVerificationError")
        assert log.done.wait(5)
    assert "served" not in log.outcomes


def test_client_refuses_wrong_host(
    pki: DevPki, creds: dict[str, Credential], trust: TrustStore
) -> None:
    # The hospital certificate is a valid server certificate, but for prefetch.hospital.test.
    other = server_ssl_context(creds["hospital"], pki.ca_bundle)
    ctx = client_ssl_context(creds["hospital"], pki.ca_bundle)
    with tls_server(other, lambda der: "served") as (port, _log):
        assert _talk(ctx, port, host="localhost").startswith("error:SSLCertVerificationError")
        assert _talk(ctx, port, host="prefetch.hospital.test") == "served"


def test_requests_session_uses_mutual_tls(
    pki: DevPki, creds: dict[str, Credential], trust: TrustStore, server_ctx: ssl.SSLContext
) -> None:
    session = mtls_session(creds["hospital"], pki.ca_bundle)
    with tls_server(server_ctx, lambda der: _uzi(der, trust)) as (port, _log):
        response = session.get(f"https://localhost:{port}/", timeout=5)
        assert response.text == pki.hospital.uzi_number
        session.verify = False  # cannot switch verification off
        with pytest.raises(requests.exceptions.SSLError):
            mtls_session(creds["hospital"], pki.foreign_ca).get(
                f"https://localhost:{port}/", timeout=5, verify=False
            )
    with pytest.raises(requests.exceptions.InvalidURL, match="plain http"):
        session.get("http://localhost:1/", timeout=1)


def test_wrong_host_through_requests(pki: DevPki, creds: dict[str, Credential]) -> None:
    other = server_ssl_context(creds["hospital"], pki.ca_bundle)
    session = mtls_session(creds["hospital"], pki.ca_bundle)
    with (
        tls_server(other, lambda der: "served") as (port, _log),
        pytest.raises(requests.exceptions.SSLError),
    ):
        session.get(f"https://localhost:{port}/", timeout=5)


def test_session_ignores_proxy_environment(
    pki: DevPki, creds: dict[str, Credential], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An https_proxy in the environment must not divert the LSP connection."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    session = mtls_session(creds["hospital"], pki.ca_bundle)
    assert session.trust_env is False
    with tls_server(
        server_ssl_context(creds["simulator"], pki.ca_bundle), lambda der: "served"
    ) as (port, _log):
        response = session.get(f"https://localhost:{port}/", timeout=5)
    assert response.status_code == 200


def test_no_key_file_left_behind(
    pki: DevPki, creds: dict[str, Credential], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    client_ssl_context(creds["hospital"], pki.ca_bundle)
    assert list(tmp_path.iterdir()) == []
