"""The daemon's HTTP endpoint: `GET /metrics` (Prometheus text format) and `GET /health`.

`/health` answers JSON `{"status": "ok"|"failing", "role": "leader"|"follower",
"checks": {name: {"ok": bool, "detail": str}}}` with 200 when every check is ok, else
503. Checks are a mapping of name -> callable, so others add theirs (the audit chain's
verification) without touching this module. A check that raises is failing; its detail
names the error type only (never a message that might quote data).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str = ""


HealthCheck = Callable[[], Check]


def run_checks(checks: Mapping[str, HealthCheck]) -> dict[str, Check]:
    results: dict[str, Check] = {}
    for name, check in checks.items():
        try:
            results[name] = check()
        except Exception as exc:  # a failing check is a result, not a crash
            results[name] = Check(False, f"check raised {type(exc).__name__}")
    return results


def health_document(checks: Mapping[str, HealthCheck], role: str) -> tuple[int, dict[str, Any]]:
    results = run_checks(checks)
    healthy = all(c.ok for c in results.values())
    body = {
        "status": "ok" if healthy else "failing",
        "role": role,
        "checks": {n: {"ok": c.ok, "detail": c.detail} for n, c in results.items()},
    }
    return (200 if healthy else 503), body


class OpsServer:
    """A small threaded HTTP server for /metrics and /health (stdlib, loopback default)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        registry: CollectorRegistry,
        checks: Mapping[str, HealthCheck],
        role: Callable[[], str],
    ) -> None:
        ops = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return  # scrapes every 15 s would drown the log

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(ops.registry))
                elif path in ("/health", "/healthz"):
                    status, body = health_document(ops.checks, ops.role())
                    self._send(status, "application/json", json.dumps(body).encode())
                else:
                    self._send(404, "text/plain", b"not found: try /metrics or /health\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.registry = registry
        self.checks = checks  # the same mapping: checks added later are served too
        self.role = role
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> OpsServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="prefetch-ops-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
