"""One ASGI middleware in front of every route: security headers, body caps, per-address
rate limits, request metrics. Pure ASGI (no per-request task), so health checks stay cheap
under load."""

from __future__ import annotations

import ipaddress
import json
import math
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._limits import RateLimiter
from ._metrics import Metrics

_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
     b"frame-ancestors 'none'; form-action 'self'"),
    (b"cache-control", b"no-store"),
]
_UNLIMITED = ("/healthz", "/readyz", "/metrics")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class TooLarge(HTTPException):
    """Raised while the body is read: the app's error handler answers 413."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, f"The request body exceeds {cap} bytes.")


class Guard:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, per_ip: RateLimiter,
                 max_body: int, max_upload: int, tls: bool,
                 trusted_proxies: list[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.per_ip = per_ip
        self.max_body = max_body
        self.max_upload = max_upload
        self.tls = tls
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        status_box = [500]
        client = self.client_ip(scope)
        scope.setdefault("state", {})["client_ip"] = client

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"server",)]
                names = {k.lower() for k, _ in headers}
                for name, value in _HEADERS:
                    if name not in names:
                        headers.append((name, value))
                if self.tls:
                    headers.append((b"strict-transport-security",
                                    b"max-age=63072000; includeSubDomains"))
                message = {**message, "headers": headers}
            await send(message)

        if path not in _UNLIMITED:
            wait = self.per_ip.take(client)
            if wait > 0:
                await _problem(send_with_headers, 429, "Too many requests",
                               "Slow down: this address sent too many requests.",
                               retry_after=wait)
                self.record(scope, started, 429)
                return
        cap = self.max_upload if (scope["method"] == "POST"
                                  and path == "/v1/documents") else self.max_body
        length = _content_length(scope)
        if length is not None and length > cap:
            await _problem(send_with_headers, 413, "Content too large",
                           f"The request body exceeds {cap} bytes.")
            self.record(scope, started, 413)
            return
        try:
            await self.app(scope, _capped(receive, cap), send_with_headers)
        finally:
            self.record(scope, started, status_box[0])

    def record(self, scope: Scope, started: float, status: int) -> None:
        route = scope.get("route")
        label = getattr(route, "path", None) or "unmatched"
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"  # bounded labels
        self.metrics.observe("greffier_http_request_duration_seconds",
                             time.perf_counter() - started, route=label,
                             method=method, status=str(status))

    def client_ip(self, scope: Scope) -> str:
        peer = (scope.get("client") or ("unix", 0))[0]
        if not self.proxies or peer == "unix":
            return str(peer)
        try:
            if not any(ipaddress.ip_address(peer) in net for net in self.proxies):
                return str(peer)
        except ValueError:
            return str(peer)
        for name, value in scope.get("headers", []):
            if name == b"x-forwarded-for":
                return value.decode("latin-1").split(",")[-1].strip() or str(peer)
        return str(peer)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _capped(receive: Receive, cap: int) -> Receive:
    seen = [0]

    async def wrapped() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            seen[0] += len(message.get("body", b""))
            if seen[0] > cap:
                raise TooLarge(cap)
        return message

    return wrapped


async def _problem(send: Send, status: int, title: str, detail: str, *,
                   retry_after: float | None = None) -> None:
    body: dict[str, Any] = {"type": f"https://greffier.example/problems/http-{status}",
                            "title": title, "status": status, "detail": detail}
    headers = [(b"content-type", b"application/problem+json")]
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))
    data = json.dumps(body).encode()
    headers.append((b"content-length", str(len(data)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
