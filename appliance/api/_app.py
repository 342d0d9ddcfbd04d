"""Builds the FastAPI application around one :class:`Runtime`."""

from __future__ import annotations

from fastapi import FastAPI

from ..service import Runtime
from . import (
    _answers,
    _audit,
    _directory,
    _documents,
    _groups,
    _identity,
    _oidc,
    _openai,
    _openapi,
    _problems,
    _sources,
    _system,
)
from ._limits import RateLimiter
from ._metrics import Metrics
from ._middleware import Guard

DESCRIPTION = """Greffier answers questions from your company's documents, on your own box.

Authenticate with an API token (`Authorization: Bearer gfr_…`, from `greffier tokens
create` or `POST /v1/tokens`) or a browser session (`POST /v1/auth/login`, then the
`__Host-greffier-session` cookie and the `X-CSRF-Token` header on every change). Errors are
RFC 9457 problem details. See docs/API.md."""


def _model_up(rt: Runtime) -> float:
    """Whether vLLM answers on its loopback port (a 0.5 s check at each scrape)."""
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{rt.settings.llm.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
            return 1.0 if response.status == 200 else 0.0
    except (OSError, urllib.error.URLError):
        return 0.0


def create_app(rt: Runtime, *, local_socket: bool = False) -> FastAPI:
    """The API over ``rt``. ``local_socket``: the root-only Unix-socket listener, where the
    caller is the local operator (peer credentials checked by the server)."""
    api = rt.settings.api
    app = FastAPI(title="Greffier", version="1", description=DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.runtime = rt
    app.state.local_socket = local_socket
    metrics = Metrics()
    metrics.describe("greffier_http_request_duration_seconds", "histogram",
                     "Request latency by route, method and status.")
    metrics.describe("greffier_sealed", "gauge", "1 while the appliance is sealed.")
    metrics.gauge("greffier_sealed", lambda: float(rt.sealed))
    rt.observe = metrics.observe  # search and generation timings
    rt.count = metrics.inc  # answers and ingested files
    metrics.describe("greffier_stage_seconds", "histogram",
                     "Search and answer stage latency (search, retrieval, first_token, "
                     "generation).")
    metrics.describe("greffier_answers_total", "counter", "Answers by outcome.")
    metrics.describe("greffier_ingest_files_total", "counter", "Ingested files by status.")
    metrics.describe("greffier_ingest_chunks_total", "counter", "Chunks indexed.")
    metrics.describe("greffier_model_service_up", "gauge",
                     "1 when the model service answers its health check.")
    metrics.gauge("greffier_model_service_up", lambda: _model_up(rt))
    app.state.metrics = metrics
    app.state.per_user = RateLimiter(api.rate_per_user)
    app.state.per_ip_login = RateLimiter(api.login_rate_per_ip)
    _problems.install(app)
    _openapi.install(app)
    for module in (_system, _answers, _documents, _sources, _audit, _identity, _groups, _openai):
        app.include_router(module.router)
    app.include_router(_directory.router)  # directory groups (LDAP)
    app.include_router(_oidc.router)  # single sign-on (OpenID Connect)
    app.add_middleware(
        Guard, metrics=metrics, per_ip=RateLimiter(api.rate_per_ip),
        max_body=api.max_body_kb * 1024, max_upload=api.max_upload_mb * 1024 * 1024,
        tls=not api.plain_http, trusted_proxies=api.trusted_proxies)
    return app
