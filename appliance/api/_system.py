"""Health, readiness, metrics, status, unseal and seal."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse

from security import KekSource, ThrottledError

from ..service import Principal, Runtime
from ..service._models import StatusOut, UnsealIn
from ._deps import Caller, Rt, client_ip, runtime
from ._limits import RateLimiter

router = APIRouter()


def _version() -> str:
    try:
        return version("greffier")
    except PackageNotFoundError:
        return "unknown"


@router.get("/healthz", tags=["system"], summary="The process is alive",
            response_class=PlainTextResponse)
async def healthz() -> str:
    return "ok"


@router.get("/readyz", tags=["system"], summary="Unsealed and serving (503 otherwise)",
            response_class=PlainTextResponse,
            responses={503: {"description": "Sealed, or the store is not open."}})
async def readyz(rt: Rt, response: Response) -> str:
    if rt.sealed:
        response.status_code = 503
        response.headers["Retry-After"] = "30"
        return "sealed"
    return "ready"


@router.get("/metrics", tags=["system"], summary="Prometheus metrics",
            response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.app.state.metrics.render(),
                             media_type="text/plain; version=0.0.4")


@router.get("/v1/status", tags=["system"], response_model=StatusOut)
def status(rt: Rt, who: Caller) -> StatusOut:
    import time

    with rt.using() as app:
        stats = app.catalog.stats()
        ident = app.encoder.identity
    return StatusOut(sealed=False, version=_version(), documents=int(str(stats["documents"])),
                     chunks=int(str(stats.get("chunks", 0))), embedder=ident.name,
                     uptime_s=round(time.time() - rt.started, 1))


def _login_limit(request: Request) -> None:
    limiter: RateLimiter = request.app.state.per_ip_login
    wait = limiter.take(client_ip(request))
    if wait > 0:
        raise ThrottledError("Too many attempts from this address.", retry_after_s=wait)


@router.post("/v1/unseal", tags=["system"], status_code=204,
             dependencies=[Depends(_login_limit)],
             summary="Unseal with the operator passphrase (Vault-style)",
             responses={401: {"description": "Wrong passphrase (recorded in the audit log)."},
                        409: {"description": "Already unsealed."},
                        429: {"description": "Too many wrong passphrases: wait."}})
def unseal(body: UnsealIn, request: Request,
           rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    """The passphrase is the credential (as for Vault): whoever holds it may unseal. Wrong
    ones are throttled on disk (they survive a restart) and audited."""
    sec = rt.settings.security
    source = KekSource("pkcs11" if sec.kek == "pkcs11" else "passphrase", body.passphrase,
                       sec.pkcs11_module, sec.pkcs11_token_label, sec.pkcs11_key_label)
    rt.unseal(source, user=f"api unseal from {client_ip(request)}")
    return Response(status_code=204)


@router.post("/v1/seal", tags=["system"], status_code=204,
             summary="Seal: the keys leave memory (admin)")
def seal(rt: Rt, who: Caller) -> Response:
    who.require("users")
    rt.seal(user=who.audit_name)
    return Response(status_code=204)


def principal_out(who: Principal) -> dict[str, object]:
    return {"user_id": who.user_id, "name": who.name, "roles": sorted(who.roles),
            "groups": sorted(who.groups), "via": who.via,
            "scopes": sorted(who.scopes) if who.scopes is not None else None}
