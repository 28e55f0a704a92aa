"""Mutual TLS (TLS 1.2 or higher) for the LSP client and the simulator.

Both sides verify with OpenSSL's strict RFC 5280 checks (`VERIFY_X509_STRICT`, the default
from Python 3.13 on) and trust only the CA file they are given, never the system store.

`ssl.SSLContext.load_cert_chain` only reads keys from files. To hand it the in-memory key,
`_load_credential` writes an *encrypted* PKCS#8 PEM (random one-time password) with mode 0600
into a private temporary directory (0700), loads it with the password, and deletes it at once.
No unencrypted key ever touches the disk.

Server side: the handshake already refuses a client without a certificate, or with one that
does not chain to `client_ca_file` (foreign, self-signed), is expired, or — when a CRL file is
given — revoked. `check_client_certificate` then applies the application's own `TrustStore`
(the same rules as for token signers) and returns the client's UZI identity.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import requests
import urllib3
from cryptography import x509
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.util.wait import wait_for_read

from prefetch.security.errors import CertificateRejected, CertReason
from prefetch.security.keys import Credential, write_private
from prefetch.security.trust import Purpose, TrustStore
from prefetch.security.uzi import UziIdentity, uzi_identity

_MIN_TLS = ssl.TLSVersion.TLSv1_2


def _load_credential(ctx: ssl.SSLContext, credential: Credential) -> None:
    password = secrets.token_bytes(32)
    with tempfile.TemporaryDirectory(prefix="prefetch-tls-") as tmp:
        os.chmod(tmp, 0o700)
        cert_file = Path(tmp) / "cert.pem"
        key_file = Path(tmp) / "key.pem"
        write_private(cert_file, credential.chain_pem)
        write_private(key_file, credential.encrypted_key_pem(password))
        ctx.load_cert_chain(str(cert_file), str(key_file), password=password)


def client_ssl_context(credential: Credential, ca_file: Path) -> ssl.SSLContext:
    """Client context: presents `credential`, trusts only `ca_file`, checks the host name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = _MIN_TLS
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_verify_locations(cafile=str(ca_file))
    _load_credential(ctx, credential)
    return ctx


def server_ssl_context(
    credential: Credential, client_ca_file: Path, *, crl_file: Path | None = None
) -> ssl.SSLContext:
    """Server context: requires a client certificate chaining to `client_ca_file`.

    With `crl_file` (PEM, one or more CRLs) the handshake also refuses revoked leaves.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _MIN_TLS
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_verify_locations(cafile=str(client_ca_file))
    if crl_file is not None:
        ctx.load_verify_locations(cafile=str(crl_file))
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    _load_credential(ctx, credential)
    return ctx


@lru_cache(maxsize=1024)
def _parse_der(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def check_client_certificate(
    der: bytes | None, trust: TrustStore, now: dt.datetime, *, require_server: bool = True
) -> UziIdentity:
    """Validate a TLS client's certificate (DER, from `getpeercert(binary_form=True)`).

    Raises CertificateRejected: missing, malformed, untrusted, self_signed, expired,
    not_yet_valid, revoked, crl_unavailable, key_usage, not_uzi (also when a server
    certificate is required and a personal one is presented).
    """
    if not der:
        raise CertificateRejected(CertReason.MISSING)
    try:
        cert = _parse_der(der)
    except ValueError:
        raise CertificateRejected(CertReason.MALFORMED) from None
    trust.validate(cert, now=now, purpose=Purpose.TLS_CLIENT)
    identity = uzi_identity(cert)
    if require_server and not identity.is_server:
        raise CertificateRejected(
            CertReason.NOT_UZI,
            serial=cert.serial_number,
            detail="a UZI server certificate is required",
        )
    return identity


_wire = threading.local()


@contextmanager
def on_the_wire(gate: Callable[[], None]) -> Iterator[None]:
    """Within this block, a request of this thread on an `MtlsAdapter` connection calls
    `gate()` once, after its connection is open (TCP and TLS handshake done) and just
    before the request's first byte is written; if `gate` raises, nothing is written and
    the exception propagates. The send time of a throttled query is taken here: a new
    connection's handshake can take longer than the throttle's margin."""
    previous = getattr(_wire, "gate", None)
    _wire.gate = gate
    try:
        yield
    finally:
        _wire.gate = previous


class _GatedConnection(HTTPSConnection):
    """urllib3 connects (`HTTPSConnectionPool._validate_conn`) before `request`."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        gate = getattr(_wire, "gate", None)
        if gate is not None:
            _wire.gate = None  # once per block: a retry on a new connection is not gated
            gate()
            self._hear_the_server_first()
        super().request(*args, **kwargs)

    def _hear_the_server_first(self) -> None:
        """The server may have spoken while we waited at the gate: with TLS 1.3 it refuses
        our certificate (expired, revoked, unknown CA) with an alert after the handshake.
        Read it now, so it surfaces as that alert (`ssl.SSLError`) and not as a broken
        pipe when the request is written to the closed connection."""
        sock = self.sock
        if sock is None or not wait_for_read(sock, timeout=0.0):
            return
        timeout = sock.gettimeout()
        sock.setblocking(False)  # TLS 1.3 session tickets alone must not block us here
        try:
            sock.recv(1)  # raises the alert; b"" on a plain close (the write then fails)
        except (ssl.SSLWantReadError, BlockingIOError):
            pass  # only session tickets: nothing to hear
        finally:
            sock.settimeout(timeout)


class _GatedPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _GatedConnection


class MtlsAdapter(HTTPAdapter):
    """A requests adapter that always uses one prepared client `SSLContext`.

    Verification cannot be switched off through `session.verify`: the context decides.
    """

    def __init__(self, ssl_context: ssl.SSLContext, **kwargs: Any) -> None:
        self._ssl_context = ssl_context
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme,
            "https": _GatedPool,
        }

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None

    def build_connection_pool_key_attributes(
        self, request: Any, verify: Any, cert: Any = None
    ) -> Any:
        host_params: Any
        pool_kwargs: Any
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        pool_kwargs["ssl_context"] = self._ssl_context
        pool_kwargs["cert_reqs"] = "CERT_REQUIRED"
        pool_kwargs.pop("ca_certs", None)
        pool_kwargs.pop("ca_cert_dir", None)
        return host_params, pool_kwargs


def mtls_session(
    credential: Credential, ca_file: Path, *, pool_maxsize: int = 8
) -> requests.Session:
    """A requests session for https:// with mutual TLS (client certificate = credential)."""
    session = requests.Session()
    # No proxies, .netrc credentials or CA bundles from the environment: the LSP connection
    # is configured explicitly (and the per-request environment lookup cost 0.4 ms).
    session.trust_env = False
    adapter = MtlsAdapter(
        client_ssl_context(credential, ca_file), pool_maxsize=pool_maxsize, max_retries=0
    )
    session.mount("https://", adapter)
    session.mount("http://", _RefuseAdapter())
    return session


class _RefuseAdapter(HTTPAdapter):
    """Plain HTTP is never used for the LSP: refuse instead of sending in the clear."""

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        raise requests.exceptions.InvalidURL("plain http is refused; the LSP needs https")
