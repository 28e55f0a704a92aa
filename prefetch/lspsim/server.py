"""The simulator's HTTP/1.1 server: SOAP 1.1 on the LSP endpoint, operator endpoints.

Stdlib `ThreadingHTTPServer` with keep-alive (`protocol_version = "HTTP/1.1"`), one thread
per connection. With `tls` the TLS handshake runs in the connection's thread (a slow or
failing handshake never blocks `accept`), the client certificate is required by the
context and, with a trust store, checked for its UZI identity; failures are counted.

Endpoints::

    POST {endpoint}      the LSP (default /lsp): queries and HL7 pings
    GET  /_sim/stats     JSON counters (see `prefetch.lspsim.stats`)
    GET  /_sim/log       {"queries": [{"at", "bsn_sha256", "client", "outcome"}, ...]}:
                         every query received since start or reset (no BSN, its SHA-256)
    POST /_sim/reset     zero the counters, attempts and outage start

Use it as a context manager::

    with SimulatorServer(world, profile, tls=tls, verifier=verifier) as sim:
        sim.url     # "https://127.0.0.1:PORT/lsp"
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from prefetch.errors import ConfigError, SecurityError
from prefetch.lspsim.clock import Clock
from prefetch.lspsim.fanout import SimAnswer
from prefetch.lspsim.profiles import Profile
from prefetch.lspsim.service import LspService, Verifier
from prefetch.lspsim.world import World
from prefetch.security.trust import TrustStore

MAX_BODY = 5 * 1024 * 1024
STATS_PATH = "/_sim/stats"
LOG_PATH = "/_sim/log"
RESET_PATH = "/_sim/reset"


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Server TLS: a context that requires client certificates (see
    `prefetch.security.tls.server_ssl_context`) and optionally the application trust
    store for the UZI identity check of the client certificate."""

    context: ssl.SSLContext
    trust: TrustStore | None = None
    handshake_timeout_s: float = 10.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], service: LspService, tls: TlsConfig | None, endpoint: str
    ) -> None:
        self.service = service
        self.tls = tls
        self.endpoint = endpoint
        # Connections are handed to `_Handler` by `finish_request` (with the client id).
        super().__init__(address, BaseHTTPRequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.service.stats.connection_opened()
        if self.tls is None:
            _Handler(request, client_address, self, client=f"ip:{client_address[0]}", identity=None)
            return
        request.settimeout(self.tls.handshake_timeout_s)
        try:
            conn = self.tls.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            self.service.stats.tls_failure()
            return
        try:
            der = conn.getpeercert(binary_form=True)
            identity: Any = None
            client = "cert:" + hashlib.sha256(der or b"").hexdigest()[:16]
            if self.tls.trust is not None:
                from prefetch.security.tls import check_client_certificate

                try:
                    identity = check_client_certificate(
                        der, self.tls.trust, self.service.clock.now()
                    )
                except SecurityError:
                    self.service.stats.tls_failure()
                    return
                client = f"uzi:{identity.ura}:{identity.uzi_number}"
            conn.settimeout(None)
            _Handler(conn, client_address, self, client=client, identity=identity)
        finally:
            conn.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "prefetch-lspsim/1"
    disable_nagle_algorithm = True
    timeout = 120  # an idle keep-alive connection is closed after this
    # Buffered writes: the status line, headers and body leave in one send (one TLS record
    # run, one system call) when `handle_one_request` flushes, instead of two.
    wbufsize = 1 << 16
    server: _Server

    def __init__(
        self, request: Any, client_address: Any, server: _Server, *, client: str, identity: Any
    ) -> None:
        self.client = client
        self.identity = identity
        super().__init__(request, client_address, server)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines are not logged (structlog is used for errors)."""

    def _send(
        self, status: int, body: bytes, content_type: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: object) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def do_GET(self) -> None:
        if self.path == STATS_PATH:
            self._json(200, self.server.service.stats.snapshot())
        elif self.path == LOG_PATH:
            log = self.server.service.stats.query_log()
            self._json(200, {"queries": [q.as_json() for q in log]})
        else:
            self._json(404, {"error": "not found"})

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY:
            self.close_connection = True
            self._json(411 if length is None else 413, {"error": "bad Content-Length"})
            return None
        return self.rfile.read(int(length))

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        if self.path == RESET_PATH:
            self.server.service.reset()
            self._json(200, {"reset": True})
            return
        if self.path != self.server.endpoint:
            self._json(404, {"error": "not found"})
            return
        answer = self.server.service.handle(body, client=self.client, client_identity=self.identity)
        if answer.reset:
            self._reset_connection()
            return
        self._write_answer(answer)

    def _write_answer(self, answer: SimAnswer) -> None:
        self._send(answer.status, answer.body, answer.content_type, answer.headers)

    def _reset_connection(self) -> None:
        """Close with TCP RST (SO_LINGER 0) and no answer: a connection reset."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if isinstance(self.connection, ssl.SSLSocket):
                raw = socket.socket(fileno=self.connection.detach())
                raw.close()
            else:
                self.connection.close()
        except OSError:
            pass


class SimulatorServer:
    """The simulated LSP on a real socket; start with `with` or `start()`/`stop()`.

    `tls=None` is plain HTTP: only for tests that ask for it. `verifier=None` skips the
    token check (the query is read with `parse_query`).
    """

    def __init__(
        self,
        world: World,
        profile: Profile,
        *,
        tls: TlsConfig | None,
        verifier: Verifier | None = None,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        endpoint: str = "/lsp",
    ) -> None:
        if not endpoint.startswith("/") or endpoint.startswith("/_sim"):
            raise ConfigError("simulator endpoint must be a path outside /_sim", endpoint=endpoint)
        self.service = LspService(world, profile, clock=clock, verifier=verifier)
        self.tls = tls
        self._host = host
        self._port = port
        self._endpoint = endpoint
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def world(self) -> World:
        return self.service.world

    @property
    def profile(self) -> Profile:
        return self.service.profile

    @property
    def port(self) -> int:
        if self._server is None:
            raise ConfigError("simulator is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def url(self) -> str:
        """The LSP endpoint URL."""
        return self.base_url + self._endpoint

    @property
    def stats_url(self) -> str:
        return self.base_url + STATS_PATH

    @property
    def log_url(self) -> str:
        return self.base_url + LOG_PATH

    @property
    def reset_url(self) -> str:
        return self.base_url + RESET_PATH

    def stats(self) -> dict[str, Any]:
        """The same JSON as `GET /_sim/stats`, without a request."""
        return self.service.stats.snapshot()

    def query_log(self) -> list[dict[str, Any]]:
        """The same list as `GET /_sim/log` (its "queries"), without a request."""
        return [q.as_json() for q in self.service.stats.query_log()]

    def reset(self) -> None:
        self.service.reset()

    def start(self) -> SimulatorServer:
        if self._server is not None:
            return self
        try:
            self._server = _Server((self._host, self._port), self.service, self.tls, self._endpoint)
        except OSError as exc:
            raise ConfigError(
                "cannot listen",
                host=self._host,
                port=self._port,
                error=exc.strerror or type(exc).__name__,
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="lspsim",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def serve_forever(self) -> None:
        """Run in the calling thread until KeyboardInterrupt (for the CLI)."""
        self.start()
        try:
            assert self._thread is not None
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        finally:
            self.stop()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
