"""Helpers for the security tests: constants, a loopback TLS server, XML tweaks."""

from __future__ import annotations

import datetime as dt
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from prefetch.hl7v3.params import QueryParams

PASSPHRASE = b"test passphrase, not secret"
BSN_A = "111222333"
BSN_B = "123456782"

ParamsFactory = Callable[..., QueryParams]  # the `make_params` fixture


@dataclass
class ServerLog:
    """What the loopback server saw: one entry per connection."""

    outcomes: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


@contextmanager
def tls_server(
    ctx: ssl.SSLContext, on_peer: Callable[[bytes | None], str]
) -> Iterator[tuple[int, ServerLog]]:
    """A real TLS server on 127.0.0.1 (random port) answering one HTTP response per connection.

    `on_peer(der)` decides the HTTP body (or raises); handshake failures are logged as
    "handshake:<error>".
    """
    log = ServerLog()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve_one(raw: socket.socket) -> None:
        raw.settimeout(5)
        try:
            with ctx.wrap_socket(raw, server_side=True) as conn:
                outcome = on_peer(conn.getpeercert(binary_form=True))
                conn.recv(65536)
                body = outcome.encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\nConnection: close\r\n\r\n"
                    + body
                )
                log.outcomes.append(outcome)
        except (ssl.SSLError, OSError) as exc:
            log.outcomes.append(f"handshake:{type(exc).__name__}")
        except Exception as exc:  # the check refused the peer
            log.outcomes.append(f"refused:{exc}")
            raw.close()
        finally:
            log.done.set()

    def loop() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve_one, args=(raw,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield port, log
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


def self_signed(key: rsa.RSAPrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed client")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def unencrypted_key_files(directory: Path) -> list[Path]:
    """Files holding a PEM private key that is not encrypted."""
    found = []
    for path in directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for m in re.finditer(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----", data):
                if b"ENCRYPTED" not in m.group(1):
                    found.append(path)
    return found
