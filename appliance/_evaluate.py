"""``greffier eval retrieval``: measure retrieval quality through the real pipeline.

The eval set's documents are ingested like any user's files into a throwaway data
directory (kept with ``--workdir`` so a second run only re-runs the queries), every query
runs in every mode, and passages are folded into a document ranking (first passage of a
document wins) to compute nDCG@10, Recall@5, Recall@20 and MRR@10.

Audited like any use of an appliance, in the throwaway appliance's own log: the ingest
through :meth:`Appliance.ingest`, and one ``eval.search`` entry per mode scored (dataset,
mode, query count, scores). The queries themselves are not receipted one by one: they are
the eval set's, not a user's questions, and a receipt each would measure signing, not
retrieval.
"""

from __future__ import annotations

import json
import re
import secrets
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from retrieval import EvalSet, SearchMode, load_eval_set, mrr_at_k, ndcg_at_k, recall_at_k
from security import KekSource, Keyring

from ._appliance import Appliance
from ._indexer import IngestReport
from ._settings import Settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ModeScores:
    mode: str
    queries: int
    ndcg_at_10: float
    recall_at_5: float
    recall_at_20: float
    mrr_at_10: float
    ms_per_query: float


@dataclass
class EvalReport:
    dataset: str
    documents: int
    chunks: int
    ingest_seconds: float
    scores: list[ModeScores]
    per_query: list[dict[str, object]]


def _write_corpus(eval_set: EvalSet, folder: Path) -> dict[str, str]:
    """Write BEIR documents as text files; return file name → document id."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {}
    for number, (doc_id, (title, text)) in enumerate(sorted(eval_set.corpus.items())):
        name = f"{number:07d}-{_UNSAFE.sub('_', doc_id)[:60]}.txt"
        names[name] = doc_id
        path = folder / name
        body = f"{title}\n\n{text}\n" if title else f"{text}\n"
        if not path.exists() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
    return names


def _throwaway_keys(settings: Settings, workdir: Path) -> KekSource:
    """The eval index is throwaway: its passphrase is random and kept beside it."""
    secret_file = workdir / "eval-passphrase"
    if not secret_file.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_urlsafe(24))
        secret_file.chmod(0o600)
    source = KekSource("passphrase", secret_file.read_text())
    if not Keyring(settings.data_dir).exists():
        Appliance.init(settings, source)
    return source


def evaluate(settings: Settings, dataset_dir: Path, *, workdir: Path,
             modes: Sequence[SearchMode] = ("bm25", "dense", "hybrid"),
             max_queries: int | None = None, depth: int = 100,
             on_ingest: Callable[[IngestReport], None] | None = None) -> EvalReport:
    eval_set = load_eval_set(dataset_dir)
    if eval_set.documents_dir is not None:
        documents = eval_set.documents_dir.resolve()
        names: dict[str, str] | None = None
    else:
        documents = (workdir / "documents").resolve()
        names = _write_corpus(eval_set, documents)

    def doc_of(path: str) -> str:
        if names is not None:
            return names.get(Path(path).name, path)
        return str(Path(path).resolve().relative_to(documents))

    run_settings = settings.model_copy(update={"data_dir": (workdir / "data").resolve()})
    source = _throwaway_keys(run_settings, workdir)
    query_ids = sorted(eval_set.queries)[:max_queries] if max_queries else sorted(
        eval_set.queries)
    with Appliance.open(run_settings, source) as app:
        report = app.ingest([documents], sync=True)
        if on_ingest:
            on_ingest(report)
        stats = app.catalog.stats()
        per_query: dict[str, dict[str, object]] = {
            qid: {"query_id": qid, "query": eval_set.queries[qid],
                  "relevant": eval_set.qrels[qid]} for qid in query_ids}
        scores = []
        for mode in modes:
            ndcg: list[float] = []
            r5: list[float] = []
            r20: list[float] = []
            mrr: list[float] = []
            times: list[float] = []
            for qid in query_ids:
                started = time.perf_counter()
                result = app.searcher.search(eval_set.queries[qid], scope=app.operator_scope,
                                             k=depth, mode=mode)
                times.append((time.perf_counter() - started) * 1000)
                ranked: list[str] = []
                for passage in result.passages:
                    doc = doc_of(passage.path)
                    if doc not in ranked:
                        ranked.append(doc)
                relevant = eval_set.qrels[qid]
                values = (ndcg_at_k(ranked, relevant, 10), recall_at_k(ranked, relevant, 5),
                          recall_at_k(ranked, relevant, 20), mrr_at_k(ranked, relevant, 10))
                for bucket, value in zip((ndcg, r5, r20, mrr), values, strict=True):
                    bucket.append(value)
                per_query[qid]["lang"] = result.query_lang
                per_query[qid][mode] = {"top10": ranked[:10], "ndcg@10": round(values[0], 4),
                                        "recall@20": round(values[2], 4)}
            scores.append(ModeScores(mode, len(query_ids), statistics.fmean(ndcg),
                                     statistics.fmean(r5), statistics.fmean(r20),
                                     statistics.fmean(mrr), statistics.median(times)))
            app.audit.append("eval.search", app.user, {
                "dataset": eval_set.name, **{k: round(v, 4) if isinstance(v, float) else v
                                             for k, v in asdict(scores[-1]).items()}})
    return EvalReport(eval_set.name, int(str(stats["documents"])), int(str(stats["chunks"])),
                      report.seconds, scores, list(per_query.values()))


def write_per_query(report: EvalReport, path: Path) -> None:
    path.write_text(json.dumps(report.per_query, ensure_ascii=False, indent=1))


def report_dict(report: EvalReport) -> dict[str, object]:
    return {"dataset": report.dataset, "documents": report.documents, "chunks": report.chunks,
            "ingest_seconds": round(report.ingest_seconds, 1),
            "scores": [asdict(s) for s in report.scores]}
