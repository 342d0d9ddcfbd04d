"""``greffier serve``: the long-running service (REST API + the CLI's Unix socket)."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import click
from pydantic import ValidationError

from security import ConfigError

from .._appliance import current_user
from .._settings import load_settings
from .._term import console
from .._tls import ensure_self_signed, fingerprint_sha256
from .._unseal import kek_source_if_given


@click.command()
@click.option("--host", default=None, help="Listen address (default: api.host).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Listen port (default: api.port).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run Greffier as a service: the REST API (HTTPS) and the local CLI socket.

    Starts sealed unless a secret is configured (GREFFIER_PASSPHRASE_FILE, a systemd
    credential, or a PKCS#11 PIN file); then an admin unseals it with POST /v1/unseal."""
    from ..api._serve import bind_tcp, bind_unix, socket_path
    from ..api._serve import serve as run
    from ..service import Runtime, operator
    from ..service._directory import run_schedule as run_directory_schedule
    from ..service._sources import run_schedule

    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = load_settings(ctx.obj)
    if overrides:
        settings = settings.model_copy(update={"api": settings.api.model_copy(
            update=overrides)})
        try:  # re-check the safety rules with the command-line values
            type(settings).model_validate(settings.model_dump())
        except ValidationError as exc:
            raise ConfigError(f"Invalid options: {exc.errors()[0]['msg']}",
                              hint="Check --host and --port (see the README).") from exc
    api = settings.api
    err = console(stderr=True)
    rt = Runtime(settings)
    try:
        tls: tuple[Path, Path] | None = None
        if not api.plain_http:
            if api.tls_cert is not None and api.tls_key is not None:
                tls = (api.tls_cert, api.tls_key)
            else:
                cert, key, made = ensure_self_signed(settings.data_dir)
                tls = (cert, key)
                if made:
                    err.print(f"made a self-signed TLS certificate (SHA-256 "
                              f"{fingerprint_sha256(cert)}); install yours with api.tls_cert")
        tcp = bind_tcp(api.host, api.port)
        unix = bind_unix(socket_path(settings.data_dir))
        source = kek_source_if_given(settings)
        if source is not None:
            rt.unseal(source, user=current_user())
        stop = threading.Event()
        threading.Thread(target=run_schedule, args=(rt, operator("scheduler"), stop),
                         name="source-schedule", daemon=True).start()
        if settings.ldap.enabled and settings.ldap.every_minutes:
            threading.Thread(target=run_directory_schedule,
                             args=(rt, operator("scheduler"), stop),
                             name="directory-schedule", daemon=True).start()
        scheme = "https" if tls else "http"
        bound = tcp.getsockname()
        state = "sealed: POST /v1/unseal" if rt.sealed else "unsealed"
        asyncio.run(run(rt, tcp, unix, tls=tls,
                        announce=f"ready {scheme}://{bound[0]}:{bound[1]} ({state})"))
        stop.set()
    finally:
        rt.close()
        socket_path(settings.data_dir).unlink(missing_ok=True)
    sys.exit(0)
