"""Helpers shared by the CLI modules."""

from __future__ import annotations

import click

from retrieval import SearchFilter

from .._appliance import Appliance
from .._settings import load_settings
from .._unseal import kek_source

_FILTER_KEYS = {"doc": "doc_ids", "lang": "langs", "format": "formats"}


def open_appliance(ctx: click.Context) -> Appliance:
    from ._remote import refuse_while_serving

    settings = load_settings(ctx.obj)
    refuse_while_serving(settings, ctx.command_path.partition(" ")[2] or "this command")
    return Appliance.open(settings, kek_source(settings))


def parse_filters(filters: tuple[str, ...]) -> SearchFilter | None:
    values: dict[str, list[str]] = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or key not in _FILTER_KEYS:
            raise click.BadParameter(f"{item!r}: use doc=ID, lang=fr|en or format=pdf",
                                     param_hint="--filter")
        values.setdefault(_FILTER_KEYS[key], []).append(value)
    if not values:
        return None
    return SearchFilter(**{k: tuple(v) for k, v in values.items()})


def filters_json(flt: SearchFilter | None) -> dict[str, list[str]] | None:
    """A search filter as the API's ``filters`` object."""
    if flt is None:
        return None
    return {"doc_ids": list(flt.doc_ids), "langs": list(flt.langs), "formats": list(flt.formats)}
