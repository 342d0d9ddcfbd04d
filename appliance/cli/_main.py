"""The ``greffier`` command line."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn, get_args

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from retrieval import SearchFilter, SearchResult
from security import AuthenticationError, GreffierError

from .._appliance import Appliance
from .._indexer import FileOutcome, IngestReport, Status
from .._indexer import Progress as IngestProgress
from .._settings import load_settings
from .._term import console as _console
from .._term import safe, safe_json
from . import _answers as _ans
from . import _audit as _aud
from . import _bundle as _bdl
from . import _directory as _dir
from . import _eval as _evl
from . import _groups as _grp
from . import _security as _sec
from . import _serve as _srv
from . import _users as _usr
from ._common import filters_json
from ._common import open_appliance as _open
from ._common import parse_filters as _parse_filters
from ._remote import LocalApi, local_api


@click.group()
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Configuration file (default: $GREFFIER_CONFIG, ./greffier.toml, "
              "/etc/greffier/greffier.toml).")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Greffier: your documents, searchable and answerable, on your own box."""
    ctx.obj = config


@cli.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--sync", is_flag=True, help="Also remove documents whose files are gone.")
@click.option("--readmit-erased", is_flag=True, help="Re-ingest content that was erased.")
@click.option("--group", "groups", multiple=True, metavar="NAME",
              help="A group that may read these documents (repeatable); you always may.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...], sync: bool, readmit_erased: bool,
           groups: tuple[str, ...], as_json: bool) -> None:
    """Ingest files and folders (only new or changed files are re-indexed). They are
    readable by you (the local operator) and by the groups you name."""
    from ..service._access import group_entries

    console = _console(stderr=True)
    with _open(ctx) as app, Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[chunks]} chunks · {task.fields[rate]}"), TimeElapsedColumn(),
        console=console, disable=as_json or not console.is_terminal,
    ) as bar:
        task = bar.add_task("files", total=None, chunks=0, rate="")
        started = time.perf_counter()
        totals = {"chunks": 0}

        def on_file(outcome: FileOutcome) -> None:
            totals["chunks"] += outcome.chunks
            elapsed = max(time.perf_counter() - started, 1e-6)
            bar.update(task, advance=1, chunks=totals["chunks"],
                       rate=f"{totals['chunks'] / elapsed:.1f} chunks/s")
            if outcome.status == "failed" and not as_json:
                bar.console.print(f"[red]✗[/] {safe(outcome.path)}: {safe(outcome.message)}",
                                  soft_wrap=True, highlight=False)

        acl = app.operator_acl + group_entries(app.db, groups)
        report = app.ingest(
            list(paths), acl=acl, sync=sync, readmit_erased=readmit_erased,
            progress=IngestProgress(on_total=lambda n: bar.update(task, total=n), on_file=on_file))
    if as_json:
        click.echo(json.dumps(_report_dict(report), indent=2))
    else:
        _print_report(report)
    if report.count("failed"):
        sys.exit(3)


def _report_dict(report: IngestReport) -> dict[str, Any]:
    statuses: tuple[Status, ...] = get_args(Status)
    return {"summary": {s: report.count(s) for s in statuses} | {
                "chunks": report.chunks, "pages": report.pages,
                "seconds": round(report.seconds, 2), "recovered": report.recovered},
            "files": [asdict(o) for o in report.outcomes]}


def _print_report(report: IngestReport) -> None:
    console = _console()
    summary = _report_dict(report)["summary"]
    console.print(
        f"{summary['indexed']} indexed, {summary['updated']} updated, "
        f"{summary['deduplicated']} deduplicated, {summary['unchanged']} unchanged, "
        f"{summary['removed']} removed, [red]{summary['failed']} failed[/] — "
        f"{summary['chunks']} chunks, {summary['pages']} pages in {summary['seconds']} s",
        soft_wrap=True)
    for o in report.outcomes:
        if o.status == "failed":  # one line per file, never wrapped: easy to grep
            console.print(f"[red]failed[/] {safe(o.path)} {safe(f'[{o.error}]')} "
                          f"{safe(o.message)}", soft_wrap=True, markup=True, highlight=False)


@cli.command()
@click.argument("query")
@click.option("--k", "k", type=click.IntRange(1, 200), default=None, help="Passages to return.")
@click.option("--filter", "filters", multiple=True, help="doc=ID, lang=fr, format=pdf (repeat).")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "bm25", "hybrid+rerank"]),
              default="hybrid")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.option("--receipt", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the signed receipt of this search to FILE.")
@click.pass_context
def search(ctx: click.Context, query: str, k: int | None, filters: tuple[str, ...], mode: str,
           as_json: bool, receipt: Path | None) -> None:
    """Search the documents (hybrid dense + BM25 by default); audited, with a receipt."""
    flt = _parse_filters(filters)
    api = local_api(load_settings(ctx.obj))
    if api is not None:  # the service runs: ask it, over its local socket
        _search_remote(api, query, k, flt, mode, as_json, receipt)
        return
    with _open(ctx) as app:
        result, signed = app.search(query, k=k, flt=flt, mode=mode)  # type: ignore[arg-type]
    if receipt:
        receipt.write_text(json.dumps(signed, indent=2))
    if as_json:
        click.echo(safe_json(_result_dict(result)))
        return
    table = Table("#", "score", "document", "page", "section", "passage",
                  title=f"{len(result.passages)} passages for “{safe(query)}”")
    for rank, p in enumerate(result.passages, start=1):
        snippet = " ".join(p.text.split())[:160]
        table.add_row(str(rank), f"{p.score:.4f}", safe(Path(p.path).name),
                      str(p.page or ""), safe(p.section[:40]), safe(snippet))
    _console().print(table, highlight=False)


def _search_remote(api: LocalApi, query: str, k: int | None, flt: SearchFilter | None,
                   mode: str, as_json: bool, receipt: Path | None) -> None:
    filters = filters_json(flt)
    body = api.call("POST", "/v1/search", json={"query": query, "k": k, "mode": mode,
                                                "filters": filters})
    if receipt:
        signed = api.call("GET", f"/v1/answers/{body['id']}/receipt")
        receipt.write_text(json.dumps(signed, indent=2))
    if as_json:
        click.echo(safe_json(body))
        return
    table = Table("#", "score", "document", "page", "section", "passage",
                  title=f"{len(body['passages'])} passages for “{safe(query)}” (via the "
                  "running service)")
    for p in body["passages"]:
        snippet = " ".join(p["text"].split())[:160]
        table.add_row(str(p["number"]), f"{p['score']:.4f}", safe(p["document"]),
                      str(p["page"] or ""), safe(p["section"][:40]), safe(snippet))
    _console().print(table, highlight=False)


def _result_dict(result: SearchResult) -> dict[str, Any]:
    return {
        "query": result.query, "mode": result.mode, "query_lang": result.query_lang,
        "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
        "passages": [
            {"rank": i, "score": p.score, "chunk_id": p.chunk_id, "doc_id": p.doc_id,
             "path": p.path, "version": p.version, "page": p.page, "section": p.section,
             "lang": p.lang, "format": p.format, "kind": p.kind, "content_hash": p.content_hash,
             "text": p.text, "also_in": [s.path for s in p.sources[1:]]}
            for i, p in enumerate(result.passages, start=1)
        ],
    }


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print status as JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Documents, chunks, formats, last sync, model identity and store back-end."""
    api = local_api(load_settings(ctx.obj))
    if api is not None:
        remote = api.call("GET", "/v1/status")
        if as_json:
            click.echo(json.dumps(remote, indent=2))
            return
        table = Table("", "", title="Greffier status (running service)", show_header=False)
        for key, value in remote.items():
            table.add_row(safe(key), safe(str(value)))
        _console().print(table)
        return
    with _open(ctx) as app:
        stats = app.catalog.stats()
        ident = app.encoder.identity
        last_sync = app.catalog.get_meta("last_sync")
        last_ingest = app.catalog.get_meta("last_ingest")
        info: dict[str, Any] = {
            **stats,
            "points": app.store.count(),
            "last_ingest": _iso(last_ingest), "last_sync": _iso(last_sync),
            "model": {"name": ident.name, "weights_sha256": ident.weights_sha256,
                      "dim": ident.dim, "id": ident.id},
            "stale_contents": len(app.catalog.stale_contents(ident.id)),
            "store": {"backend": app.settings.store.backend, "location":
                      str(app.settings.data_dir / "qdrant") if app.settings.store.backend ==
                      "embedded" else app.settings.store.url},
            "data_dir": str(app.settings.data_dir),
            "parser_sandbox": _sandbox(app),
        }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    table = Table("", "", title="Greffier status", show_header=False)
    for key, value in info.items():
        table.add_row(safe(key), safe(json.dumps(value) if isinstance(value, dict) else value))
    _console().print(table)


def _sandbox(app: Appliance) -> dict[str, Any]:
    """How the parser worker is confined, as it reports from inside (it is started)."""
    isolation = app.indexer.worker.start()
    return {"offline_by_kernel": isolation.offline, "network_namespace": isolation.netns,
            "seccomp": isolation.seccomp, "user": isolation.user, "uid": isolation.uid,
            "keyring_refused": isolation.keyring_refused, "notes": list(isolation.notes)}


def _iso(stamp: str | None) -> str | None:
    if stamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(stamp)))


for _command in (_srv.serve, _usr.users, _usr.tokens, _sec.init, _sec.unseal, _sec.seal,
                 _sec.keys, _sec.export_command, _sec.erase_command, _aud.audit, _aud.receipt,
                 _aud.verify_certificate, _evl.eval_group, _grp.groups,
                 _ans.ask, _ans.llm, _ans.models):
    cli.add_command(_command)
cli.add_command(_dir.directory)  # directory groups (LDAP)
cli.add_command(_bdl.bundle)  # air-gapped delivery


def main() -> None:
    """Console entry point: every error ends in one line on stderr, never a traceback.

    ``GreffierError`` (what a user can cause, with its hint): exit code 2. Library errors
    that reach this boundary are converted when their cause is clear (tampered data, a file
    that cannot be read); anything else is a bug, reported in one line with exit code 70
    (``GREFFIER_TRACEBACK=1`` shows the traceback).
    """
    try:
        cli(standalone_mode=True)
    except GreffierError as exc:
        _fail(exc)
    except AuthenticationError as exc:
        _fail(GreffierError(
            "Stored data failed authentication: it was altered, damaged or comes from "
            "another appliance.",
            hint="Run `greffier audit verify` and restore the data directory from a backup."),
            exc)
    except OSError as exc:
        if exc.filename is None:
            _crash(exc)
        where = f"{exc.filename} → {exc.filename2}" if exc.filename2 else exc.filename
        _fail(GreffierError(f"Cannot use {where}: {exc.strerror or exc}.",
                            hint="Check that the path exists and that this user may read "
                            "(or write) it."), exc)
    except Exception as exc:
        _crash(exc)


def _fail(error: GreffierError, cause: BaseException | None = None) -> NoReturn:
    line = f"[red]error:[/] {safe(error.message)}"
    if error.hint:
        line += f" [yellow]— what to do:[/] {safe(error.hint)}"
    _console(stderr=True).print(line, soft_wrap=True, highlight=False)
    if cause is not None and os.environ.get("GREFFIER_TRACEBACK"):
        traceback.print_exception(cause)
    sys.exit(2)


def _crash(exc: BaseException) -> NoReturn:
    if os.environ.get("GREFFIER_TRACEBACK"):
        traceback.print_exception(exc)
    _console(stderr=True).print(
        f"[red]error:[/] unexpected {type(exc).__name__}: {safe(exc)} [yellow]— what to do:[/] "
        "this is a bug in Greffier; report it with the command you ran "
        "(GREFFIER_TRACEBACK=1 shows the details).", soft_wrap=True, highlight=False)
    sys.exit(70)
