"""``greffier users`` and ``greffier tokens``: accounts for the operator on the box (the
first admin among them). Through the running service's socket, or in this process."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from .._settings import load_settings
from .._term import console, safe
from ._remote import service_api

ROLE = click.Choice(["reader", "editor", "admin", "auditor"])
SCOPE = click.Choice(["read", "ask", "ingest", "admin", "audit"])


def _call(ctx: click.Context, method: str, path: str, **kwargs: Any) -> Any:
    api = service_api(load_settings(ctx.obj))
    try:
        return api.call(method, path, **kwargs)
    finally:
        api.close()


@click.group()
def users() -> None:
    """Accounts: add, list, change roles, disable (audited as the local operator)."""


@users.command(name="add")
@click.argument("name")
@click.option("--role", "roles", type=ROLE, multiple=True, required=True,
              help="reader, editor, admin or auditor (repeat; never admin with auditor).")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Read the password from FILE (default: a random one, "
              "printed once).")
@click.pass_context
def users_add(ctx: click.Context, name: str, roles: tuple[str, ...],
              password_file: Path | None) -> None:
    """Create an account. Admins and auditors get a second factor (TOTP) now."""
    password = (password_file.read_text().rstrip("\n") if password_file
                else secrets.token_urlsafe(18))
    out = _call(ctx, "POST", "/v1/users",
                json={"name": name, "password": password, "roles": list(roles)})
    click.echo(f"created {safe(out['user']['name'])} ({', '.join(out['user']['roles'])})")
    if password_file is None:
        click.echo(f"password (shown once): {password}")
    if out.get("totp_uri"):
        click.echo("second factor: add this to an authenticator app (shown once):")
        click.echo(out["totp_uri"])


@users.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def users_list(ctx: click.Context, as_json: bool) -> None:
    """List the accounts."""
    rows = _call(ctx, "GET", "/v1/users")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "roles", "2FA", "disabled", "locked until", title="Accounts")
    for u in rows:
        table.add_row(safe(u["name"]), ", ".join(u["roles"]), "yes" if u["totp_enabled"]
                      else "no", "yes" if u["disabled"] else "", safe(u["locked_until"] or ""))
    console().print(table)


@users.command(name="disable")
@click.argument("name")
@click.pass_context
def users_disable(ctx: click.Context, name: str) -> None:
    """Disable an account: its sessions end, its tokens are revoked."""
    _call(ctx, "POST", f"/v1/users/{name}/disable")
    click.echo(f"disabled {safe(name)}")


@users.command(name="roles")
@click.argument("name")
@click.option("--role", "roles", type=ROLE, multiple=True, required=True, help="Repeat.")
@click.pass_context
def users_roles(ctx: click.Context, name: str, roles: tuple[str, ...]) -> None:
    """Replace an account's roles."""
    out = _call(ctx, "PUT", f"/v1/users/{name}/roles", json={"roles": list(roles)})
    click.echo(f"{safe(name)}: {', '.join(out['user']['roles'])}")
    if out.get("totp_uri"):
        click.echo(f"second factor (shown once): {out['totp_uri']}")


@click.group()
def tokens() -> None:
    """API tokens for scripts and OpenAI-compatible clients."""


@tokens.command(name="create")
@click.option("--user", "user", required=True, help="The account the token acts for.")
@click.option("--name", "name", required=True, help="What uses it (e.g. nightly-report).")
@click.option("--scope", "scopes", type=SCOPE, multiple=True, required=True, help="Repeat.")
@click.option("--days", type=click.IntRange(1, 3650), default=90, show_default=True)
@click.pass_context
def tokens_create(ctx: click.Context, user: str, name: str, scopes: tuple[str, ...],
                  days: int) -> None:
    """Create a token (printed once; only its hash is kept)."""
    out = _call(ctx, "POST", "/v1/tokens", json={
        "name": name, "scopes": list(scopes), "expires_in_days": days, "user": user})
    click.echo(out["token"])
    click.echo(f"token {out['info']['id']} for {safe(user)}, scopes "
               f"{', '.join(out['info']['scopes'])}, expires {out['info']['expires_at']}",
               err=True)


@tokens.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def tokens_list(ctx: click.Context, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    rows = _call(ctx, "GET", "/v1/tokens")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("id", "user", "name", "scopes", "expires", "revoked", "last used",
                  title="API tokens")
    for t in rows:
        table.add_row(t["id"], safe(t["user"]), safe(t["name"]), ", ".join(t["scopes"]),
                      t["expires_at"], t["revoked_at"] or "", t["last_used_at"] or "")
    console().print(table)


@tokens.command(name="revoke")
@click.argument("token_id")
@click.pass_context
def tokens_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke a token now."""
    _call(ctx, "DELETE", f"/v1/tokens/{token_id}")
    click.echo(f"revoked {token_id}")
