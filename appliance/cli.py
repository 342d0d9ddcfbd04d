"""The ``greffier`` command line."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, get_args

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from retrieval import SearchFilter, SearchResult
from security import GreffierError, Keyring, verify, verify_log, verify_receipt

from ._appliance import Appliance, rotate_kek
from ._indexer import FileOutcome, IngestReport, Status
from ._indexer import Progress as IngestProgress
from ._settings import load_settings
from ._unseal import kek_source

_FILTER_KEYS = {"doc": "doc_ids", "lang": "langs", "format": "formats"}


@click.group()
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Configuration file (default: $GREFFIER_CONFIG, ./greffier.toml, "
              "/etc/greffier/greffier.toml).")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Greffier: your documents, searchable and answerable, on your own box."""
    ctx.obj = config


def _open(ctx: click.Context) -> Appliance:
    settings = load_settings(ctx.obj)
    return Appliance.open(settings, kek_source(settings))


@cli.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--sync", is_flag=True, help="Also remove documents whose files are gone.")
@click.option("--readmit-erased", is_flag=True, help="Re-ingest content that was erased.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...], sync: bool, readmit_erased: bool,
           as_json: bool) -> None:
    """Ingest files and folders (only new or changed files are re-indexed)."""
    console = Console(stderr=True)
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
                bar.console.print(f"[red]✗[/] {outcome.path}: {outcome.message}")

        report = app.ingest(
            list(paths), sync=sync, readmit_erased=readmit_erased,
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
    console = Console()
    summary = _report_dict(report)["summary"]
    console.print(
        f"{summary['indexed']} indexed, {summary['updated']} updated, "
        f"{summary['deduplicated']} deduplicated, {summary['unchanged']} unchanged, "
        f"{summary['removed']} removed, [red]{summary['failed']} failed[/] — "
        f"{summary['chunks']} chunks, {summary['pages']} pages in {summary['seconds']} s")
    for o in report.outcomes:
        if o.status == "failed":  # one line per file, never wrapped: easy to grep
            console.print(f"[red]failed[/] {escape(o.path)} {escape(f'[{o.error}]')} "
                          f"{escape(o.message)}", soft_wrap=True,
                          markup=True, highlight=False)


def _parse_filters(filters: tuple[str, ...]) -> SearchFilter | None:
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
    with _open(ctx) as app:
        result, signed = app.search(query, k=k, flt=flt, mode=mode)  # type: ignore[arg-type]
    if receipt:
        receipt.write_text(json.dumps(signed, indent=2))
    if as_json:
        click.echo(json.dumps(_result_dict(result), indent=2, ensure_ascii=False))
        return
    table = Table("#", "score", "document", "page", "section", "passage",
                  title=f"{len(result.passages)} passages for {query!r}")
    for rank, p in enumerate(result.passages, start=1):
        snippet = " ".join(p.text.split())[:160]
        table.add_row(str(rank), f"{p.score:.4f}", Path(p.path).name, str(p.page or ""),
                      p.section[:40], snippet)
    Console().print(table)


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
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the appliance's keys (KEK from the passphrase or the PKCS#11 token)."""
    settings = load_settings(ctx.obj)
    public = Appliance.init(settings, kek_source(settings))
    click.echo(f"Initialised {settings.data_dir} ({settings.security.kek} KEK).")
    click.echo(f"Appliance signing key (Ed25519, base64): {base64.b64encode(public).decode()}")


@cli.group()
def keys() -> None:
    """Key management."""


@keys.command(name="rotate")
@click.pass_context
def keys_rotate(ctx: click.Context) -> None:
    """Wrap every data key under a new KEK (GREFFIER_NEW_PASSPHRASE[_FILE]); no re-encryption."""
    settings = load_settings(ctx.obj)
    with _open(ctx) as app:
        count = rotate_kek(app, kek_source(settings, new=True))
    click.echo(f"Rotated the KEK: {count} data keys re-wrapped.")


@cli.command(name="export")
@click.argument("document")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export_command(ctx: click.Context, document: str, output: Path) -> None:
    """Write a document's original file, decrypted (id, path or content sha256)."""
    from ._erase import find_content

    with _open(ctx) as app:
        size = app.export(find_content(app, document), output)
    click.echo(f"wrote {output} ({size} bytes)")


@cli.command(name="erase")
@click.argument("document")
@click.option("--by", "erased_by", default=None, help="Who erases (default: $SUDO_USER/$USER).")
@click.pass_context
def erase_command(ctx: click.Context, document: str, erased_by: str | None) -> None:
    """Erase a document for good (crypto-erasure) and print its signed certificate."""
    import getpass as _getpass

    from ._erase import erase

    who = erased_by or os.environ.get("SUDO_USER") or _getpass.getuser()
    with _open(ctx) as app:
        certificate = erase(app, document, erased_by=who)
    click.echo(json.dumps(certificate, indent=2))


@cli.group()
def audit() -> None:
    """The tamper-evident audit log."""


def _audit_files(bundle: Path | None, data_dir: Path) -> tuple[list[str], list[str], bytes]:
    if bundle is not None:
        data = json.loads(bundle.read_text())
        return data["log"], data["heads"], base64.b64decode(data["public_key"])
    folder = data_dir / "audit"

    def lines(name: str) -> list[str]:
        path = folder / name
        return path.read_text().splitlines() if path.exists() else []

    return lines("log.jsonl"), lines("heads.jsonl"), Keyring(data_dir).public_key()


@audit.command(name="verify")
@click.option("--bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Verify an exported bundle instead of this appliance's log.")
@click.pass_context
def audit_verify(ctx: click.Context, bundle: Path | None) -> None:
    """Check every entry and signed tree head; name the first bad entry."""
    log, heads, public = _audit_files(bundle, load_settings(ctx.obj).data_dir)
    report = verify_log(log, heads, public)
    if not report.ok:
        click.echo(f"FAILED: {report.problem}", err=True)
        sys.exit(1)
    click.echo(f"valid: {report.entries} entries, {report.heads} signed tree heads")


@audit.command(name="export")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def audit_export(ctx: click.Context, output: Path) -> None:
    """Write a self-verifiable bundle (log, signed heads, public key) for an auditor."""
    log, heads, public = _audit_files(None, load_settings(ctx.obj).data_dir)
    output.write_text(json.dumps({
        "format": "greffier-audit-bundle", "version": 1,
        "public_key": base64.b64encode(public).decode(), "log": log, "heads": heads,
        "how_to_verify": "greffier audit verify --bundle FILE, or see security/FORMAT.md: "
                         "leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || l || r), "
                         "heads signed with Ed25519 over canonical JSON."}, indent=1))
    click.echo(f"wrote {output}: {len(log)} entries, {len(heads)} signed heads")


@cli.group()
def receipt() -> None:
    """Signed receipts of searches (and, later, answers)."""


@receipt.command(name="verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", default=None,
              help="Ed25519 public key (base64); default: this appliance's.")
@click.pass_context
def receipt_verify(ctx: click.Context, file: Path, public_key: str | None) -> None:
    """Verify a receipt offline: signature, signed tree head, inclusion in the audit log."""
    document = json.loads(file.read_text())
    key = base64.b64decode(public_key) if public_key else Keyring(
        load_settings(ctx.obj).data_dir).public_key()
    ok, why = verify_receipt(document, key)
    if not ok:
        click.echo(f"INVALID: {why}", err=True)
        sys.exit(1)
    click.echo(f"valid: {document['kind']} by {document['user']} at {document['time']}, "
               f"audit entry {document['audit']['index']}")


@cli.command(name="verify-certificate")
@click.argument("certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", default=None,
              help="Ed25519 public key (base64); default: this appliance's.")
@click.pass_context
def verify_certificate(ctx: click.Context, certificate: Path, public_key: str | None) -> None:
    """Check an erasure certificate's signature, offline."""
    document = json.loads(certificate.read_text())
    key = base64.b64decode(public_key) if public_key else Keyring(
        load_settings(ctx.obj).data_dir).public_key()
    if not verify(document, key):
        click.echo("INVALID: the signature does not match.", err=True)
        sys.exit(1)
    click.echo(f"valid: content {document['content_sha256']} erased at {document['erased_at']} "
               f"by {document['erased_by']}")


@cli.command()
@click.argument("question")
@click.option("--filter", "filters", multiple=True, help="doc=ID, lang=fr, format=pdf (repeat).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option("--receipt", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the signed receipt of this answer to FILE.")
@click.pass_context
def ask(ctx: click.Context, question: str, filters: tuple[str, ...], as_json: bool,
        receipt: Path | None) -> None:
    """Answer a question from the documents, citing its sources (streams to the terminal)."""
    console = Console()

    def on_token(token: str) -> None:
        if not as_json:
            console.print(token, end="", markup=False, highlight=False, soft_wrap=True)

    with _open(ctx) as app:
        answer, signed = app.ask(question, on_token=on_token, flt=_parse_filters(filters))
    if receipt:
        receipt.write_text(json.dumps(signed, indent=2))
    if as_json:
        click.echo(json.dumps(_answer_dict(answer), indent=2, ensure_ascii=False))
        return
    if answer.refused or answer.degraded:
        console.print(answer.text or answer.notice, markup=False)
    if answer.degraded:
        console.print(f"[yellow]{escape(answer.notice)}[/]")
    console.print()
    for number, p in enumerate(answer.passages, start=1):
        cited = [c for c in answer.citations if c.number == number]
        mark = "*" if cited else " "
        origin = " (attributed)" if cited and cited[0].origin == "attributed" else ""
        console.print(f"{mark}[{number}] {escape(Path(p.path).name)}"
                      f"{f', page {p.page}' if p.page else ''}{origin}", highlight=False)
    if answer.invalid_citations:
        console.print(f"[red]The answer cites sources that were not given: "
                      f"{answer.invalid_citations}[/]")


def _answer_dict(answer: Any) -> dict[str, Any]:
    return {
        "question": answer.question, "lang": answer.lang, "answer": answer.text,
        "refused": answer.refused, "degraded": answer.degraded, "notice": answer.notice,
        "model": answer.model, "model_sha256": answer.model_sha256,
        "prompt_template": answer.template_version,
        "sampling": {"temperature": answer.sampling.temperature, "top_p": answer.sampling.top_p,
                     "max_tokens": answer.sampling.max_tokens, "seed": answer.sampling.seed},
        "timings_ms": {k: round(v, 1) for k, v in answer.timings_ms.items()},
        "sources": [{"number": i, "chunk_id": p.chunk_id, "content_sha256": p.content_hash,
                     "doc_id": p.doc_id, "version": p.version, "path": p.path, "page": p.page,
                     "text": p.text} for i, p in enumerate(answer.passages, start=1)],
        "citations": [{"number": c.number, "valid": c.valid, "chunk_id": c.chunk_id,
                       "path": c.path, "origin": c.origin} for c in answer.citations],
        "invalid_citations": answer.invalid_citations,
    }


@cli.group()
def llm() -> None:
    """The model service (vLLM)."""


@llm.command(name="serve")
@click.pass_context
def llm_serve(ctx: click.Context) -> None:
    """Run vLLM on 127.0.0.1 with an API key until interrupted (Ctrl-C stops it cleanly)."""
    import signal as _signal

    from ._llm import ModelService

    service = ModelService(load_settings(ctx.obj))
    click.echo(f"starting vLLM ({service.model_dir()}) on {service.url} …")
    service.start()
    click.echo(f"ready: {service.url}/v1 (log: {service.log})")
    _signal.signal(_signal.SIGTERM, lambda *_: service.stop())
    try:
        assert service.proc is not None
        service.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
        click.echo("vLLM stopped")


@cli.group()
def models() -> None:
    """Model folders."""


@models.command(name="prepare-dev")
@click.pass_context
def models_prepare_dev(ctx: click.Context) -> None:
    """Build the development LLM (SmolLM2-135M-Instruct, bf16 safetensors) offline."""
    from ._llm import ModelService, prepare_dev, verify_model_folder

    service = ModelService(load_settings(ctx.obj))
    target = prepare_dev(service.model_dir())
    click.echo(f"built {target} (SHA256SUMS digest {verify_model_folder(target)[:16]}…)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print status as JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Documents, chunks, formats, last sync, model identity and store back-end."""
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
        }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    table = Table("", "", title="Greffier status", show_header=False)
    for key, value in info.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    Console().print(table)


@cli.group(name="eval")
def eval_group() -> None:
    """Measure retrieval quality."""


@eval_group.command(name="retrieval")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--modes", default="bm25,dense,hybrid",
              help="Comma-separated: bm25, dense, hybrid, hybrid+rerank.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the throwaway index here; a second run reuses it (default: temp).")
@click.option("--max-queries", type=click.IntRange(1), default=None,
              help="Evaluate only the first N queries.")
@click.option("--per-query", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write per-query rankings and scores (JSON) for error analysis.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
@click.pass_context
def eval_retrieval(ctx: click.Context, dataset: Path, modes: str, workdir: Path | None,
                   max_queries: int | None, per_query: Path | None, as_json: bool) -> None:
    """Score retrieval on a BEIR folder or a golden set (nDCG@10, Recall@5/20, MRR@10)."""
    import tempfile

    from ._evaluate import evaluate, report_dict, write_per_query

    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    valid = {"bm25", "dense", "hybrid", "hybrid+rerank"}
    if not set(chosen) <= valid:
        raise click.BadParameter(f"choose among {sorted(valid)}", param_hint="--modes")
    settings = load_settings(ctx.obj)
    with tempfile.TemporaryDirectory(prefix="greffier-eval-") as tmp:
        report = evaluate(settings, dataset, workdir=workdir or Path(tmp),
                          modes=chosen,  # type: ignore[arg-type]
                          max_queries=max_queries)
    if per_query:
        write_per_query(report, per_query)
    if as_json:
        click.echo(json.dumps(report_dict(report), indent=2))
        return
    table = Table("mode", "nDCG@10", "Recall@5", "Recall@20", "MRR@10", "ms/query",
                  title=f"{report.dataset}: {len(report.per_query)} queries, "
                  f"{report.documents} documents, {report.chunks} chunks")
    for s in report.scores:
        table.add_row(s.mode, f"{s.ndcg_at_10:.4f}", f"{s.recall_at_5:.4f}",
                      f"{s.recall_at_20:.4f}", f"{s.mrr_at_10:.4f}", f"{s.ms_per_query:.1f}")
    Console().print(table)


def _iso(stamp: str | None) -> str | None:
    if stamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(stamp)))


def main() -> None:
    """Console entry point: GreffierErrors become one clear line and exit code 2."""
    try:
        cli(standalone_mode=True)
    except GreffierError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc.message}")
        if exc.hint:
            Console(stderr=True).print(f"[yellow]what to do:[/] {exc.hint}")
        sys.exit(2)
