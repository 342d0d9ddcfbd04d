"""``greffier groups``: groups and their members, for the operator on the box. Through the
running service's socket, or in this process (the same routes either way)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click
from rich.table import Table

from .._term import console, safe
from ._users import _call


def _path(name: str, user: str | None = None) -> str:
    path = f"/v1/groups/{quote(name, safe='')}"
    return path if user is None else f"{path}/members/{quote(user, safe='')}"


@click.group()
def groups() -> None:
    """Groups: add, list, show, delete, and their members (audited as the local operator)."""


@groups.command(name="add")
@click.argument("name")
@click.pass_context
def groups_add(ctx: click.Context, name: str) -> None:
    """Create an empty group."""
    out = _call(ctx, "POST", "/v1/groups", json={"name": name})
    click.echo(f"created group {safe(out['name'])}")


@groups.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def groups_list(ctx: click.Context, as_json: bool) -> None:
    """List the groups and how many members each has."""
    rows: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = _call(ctx, "GET", "/v1/groups", params={"offset": offset, "limit": 500})
        rows += page["items"]
        offset = page["next_offset"]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "members", "created", title="Groups")
    for g in rows:
        table.add_row(safe(g["name"]), str(g["members"]), safe(g["created_at"]))
    console().print(table)


@groups.command(name="show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def groups_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show a group and its members."""
    out = _call(ctx, "GET", _path(name))
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"{safe(out['name'])}: {len(out['members'])} member(s)")
    for member in out["members"]:
        click.echo(f"  {safe(member)}")


@groups.command(name="delete")
@click.argument("name")
@click.pass_context
def groups_delete(ctx: click.Context, name: str) -> None:
    """Delete a group; its members lose what it granted at once."""
    out = _call(ctx, "DELETE", _path(name))
    click.echo(f"deleted group {safe(out['name'])} ({len(out['members'])} member(s) removed)")


@groups.group()
def members() -> None:
    """Add accounts to a group, or take them out."""


@members.command(name="add")
@click.argument("name")
@click.argument("user")
@click.pass_context
def members_add(ctx: click.Context, name: str, user: str) -> None:
    """Add the account USER to the group NAME."""
    out = _call(ctx, "PUT", _path(name, user))
    click.echo(f"added {safe(user)} to {safe(name)}" if out["changed"]
               else f"{safe(user)} was already in {safe(name)}: nothing changed")


@members.command(name="remove")
@click.argument("name")
@click.argument("user")
@click.pass_context
def members_remove(ctx: click.Context, name: str, user: str) -> None:
    """Take the account USER out of the group NAME."""
    out = _call(ctx, "DELETE", _path(name, user))
    click.echo(f"removed {safe(user)} from {safe(name)}" if out["changed"]
               else f"{safe(user)} was not in {safe(name)}: nothing changed")
