"""``greffier eval``: retrieval quality through the real pipeline (``_evaluate.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from .._settings import load_settings
from .._term import console as _console
from .._term import safe


@click.group(name="eval")
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

    from .._evaluate import evaluate, report_dict, write_per_query

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
                  title=f"{safe(report.dataset)}: {len(report.per_query)} queries, "
                  f"{report.documents} documents, {report.chunks} chunks")
    for s in report.scores:
        table.add_row(safe(s.mode), f"{s.ndcg_at_10:.4f}", f"{s.recall_at_5:.4f}",
                      f"{s.recall_at_20:.4f}", f"{s.mrr_at_10:.4f}", f"{s.ms_per_query:.1f}")
    _console().print(table)
