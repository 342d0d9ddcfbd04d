"""CLI: answers and the model service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from retrieval import SearchFilter

from .._settings import load_settings
from .._term import console as _console
from .._term import safe, safe_json
from ._common import filters_json
from ._common import open_appliance as _open
from ._common import parse_filters as _parse_filters
from ._remote import LocalApi, local_api


@click.command()
@click.argument("question")
@click.option("--filter", "filters", multiple=True, help="doc=ID, lang=fr, format=pdf (repeat).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option("--receipt", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the signed receipt of this answer to FILE.")
@click.pass_context
def ask(ctx: click.Context, question: str, filters: tuple[str, ...], as_json: bool,
        receipt: Path | None) -> None:
    """Answer a question from the documents, citing its sources (streams to the terminal)."""
    console = _console()

    def on_token(token: str) -> None:
        if not as_json:
            # Model output is untrusted too: it may echo a document's escape sequences.
            console.print(safe(token, markup=False, single_line=False), end="", markup=False,
                          highlight=False, soft_wrap=True)

    flt = _parse_filters(filters)
    api = local_api(load_settings(ctx.obj))
    if api is not None:  # the service runs: ask it over its local socket
        _ask_remote(api, question, flt, as_json, receipt)
        return
    with _open(ctx) as app:
        answer, signed = app.ask(question, on_token=on_token, flt=flt)
    if receipt:
        receipt.write_text(json.dumps(signed, indent=2))
    if as_json:
        click.echo(safe_json(_answer_dict(answer)))
        return
    if answer.refused or answer.degraded:
        console.print(safe(answer.text or answer.notice, markup=False, single_line=False),
                      markup=False, highlight=False, soft_wrap=True)
    if answer.degraded:
        console.print(f"[yellow]{safe(answer.notice)}[/]", soft_wrap=True)
    console.print()
    for number, p in enumerate(answer.passages, start=1):
        cited = [c for c in answer.citations if c.number == number]
        mark = "*" if cited else " "
        origin = " (attributed)" if cited and cited[0].origin == "attributed" else ""
        console.print(f"{mark}[{number}] {safe(Path(p.path).name)}"
                      f"{f', page {p.page}' if p.page else ''}{origin}", highlight=False,
                      soft_wrap=True)
    if answer.invalid_citations:
        console.print(f"[red]The answer cites sources that were not given: "
                      f"{answer.invalid_citations}[/]")


def _ask_remote(api: LocalApi, question: str, flt: SearchFilter | None, as_json: bool,
                receipt: Path | None) -> None:
    filters = filters_json(flt)
    body = api.call("POST", "/v1/ask", json={"question": question, "filters": filters})
    if receipt:
        receipt.write_text(json.dumps(api.call("GET", f"/v1/answers/{body['id']}/receipt"),
                                      indent=2))
    if as_json:
        click.echo(safe_json(body))
        return
    console = _console()
    console.print(safe(body["answer"] or body["notice"], markup=False, single_line=False),
                  markup=False, highlight=False, soft_wrap=True)
    if body["degraded"]:
        console.print(f"[yellow]{safe(body['notice'])}[/]", soft_wrap=True)
    cited = {c["number"] for c in body["citations"]}
    for p in body["passages"]:
        mark = "*" if p["number"] in cited else " "
        page = f", page {p['page']}" if p["page"] else ""
        console.print(f"{mark}[{p['number']}] {safe(p['document'])}{page}", highlight=False,
                      soft_wrap=True)


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


@click.group()
def llm() -> None:
    """The model service (vLLM)."""


@llm.command(name="serve")
@click.pass_context
def llm_serve(ctx: click.Context) -> None:
    """Run vLLM on 127.0.0.1 with an API key until interrupted (Ctrl-C stops it cleanly)."""
    import signal as _signal

    from .._llm import ModelService

    service = ModelService(load_settings(ctx.obj))
    click.echo(f"starting vLLM ({safe(service.model_dir(), markup=False)}) on {service.url} …")
    service.start()
    click.echo(f"ready: {service.url}/v1 (log: {safe(service.log, markup=False)})")
    _signal.signal(_signal.SIGTERM, lambda *_: service.stop())
    try:
        assert service.proc is not None
        service.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
        click.echo("vLLM stopped")


@click.group()
def models() -> None:
    """Model folders."""


@models.command(name="prepare-dev")
@click.pass_context
def models_prepare_dev(ctx: click.Context) -> None:
    """Build the development LLM (SmolLM2-135M-Instruct, bf16 safetensors) offline."""
    from .._llm import ModelService, prepare_dev, verify_model_folder

    service = ModelService(load_settings(ctx.obj))
    target = prepare_dev(service.model_dir())
    digest = verify_model_folder(target)[:16]
    click.echo(f"built {safe(target, markup=False)} (SHA256SUMS digest {digest}…)")
