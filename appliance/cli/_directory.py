"""``greffier directory``: sync users and groups from the LDAP directory now, and see how
the last sync went. Through the running service's socket, or in this process."""

from __future__ import annotations

import json
from typing import Any

import click

from .._term import safe
from ._users import _call


@click.group()
def directory() -> None:
    """Directory groups (LDAP / Active Directory): sync now, status."""


@directory.command(name="sync")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def directory_sync(ctx: click.Context, as_json: bool) -> None:
    """Bring the directory's users, groups and memberships in now (audited)."""
    out = _call(ctx, "POST", "/v1/directory/sync")
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(_counts(out))
    for conflict in out["conflicts"]:
        click.echo(f"  skipped {conflict['kind']} {safe(conflict['name'])} "
                   f"({safe(conflict['dn'])}): {safe(conflict['reason'])}")


@directory.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def directory_status(ctx: click.Context, as_json: bool) -> None:
    """Show the directory's settings and its last sync."""
    out = _call(ctx, "GET", "/v1/directory")
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    if not out["configured"]:
        click.echo("no directory configured (ldap.url)")
        return
    every = f"every {out['every_minutes']} min" if out["every_minutes"] else "on demand only"
    click.echo(f"directory {safe(out['url'])}, synced {every}"
               + (" (a sync is running)" if out["running"] else ""))
    last = out["last"]
    if last is None:
        click.echo("never synced")
    elif last["ok"]:
        click.echo(f"last sync {safe(last['finished_at'])} by {safe(last['by'])}: "
                   f"{_counts(last)}")
    else:
        click.echo(f"last sync {safe(last['finished_at'])} FAILED: {safe(last['error'])}")


def _counts(out: dict[str, Any]) -> str:
    c = out["counts"]
    return (f"users: {c['users_created']} created, {c['users_updated']} updated, "
            f"{c['users_disabled']} disabled, {c['users_enabled']} enabled; groups: "
            f"{c['groups_created']} created, {c['groups_updated']} renamed, "
            f"{c['groups_deleted']} deleted; memberships: +{c['memberships_added']} "
            f"-{c['memberships_removed']}; conflicts: {c['conflicts']}")
