"""Evaluation: metrics on hand-computed cases, and `greffier eval` end to end on small slices."""

from __future__ import annotations

import json
import math
import random
import statistics
import warnings
from pathlib import Path

import pytest

from appliance._evaluate import evaluate
from embeddings import default_model_dir
from retrieval import mrr_at_k, ndcg_at_k, recall_at_k

from conftest import ROOT, make_settings, open_appliance

SHARED = ROOT.parent / "shared" / "data"


@pytest.mark.unit
def test_metrics_hand_computed() -> None:
    ranked = ["d3", "d1", "d7", "d2"]
    relevant = {"d1": 1, "d2": 2}
    dcg = 1 / math.log2(3) + 2 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(ranked, relevant, 1) == 0.0
    assert recall_at_k(ranked, relevant, 2) == 0.5
    assert recall_at_k(ranked, relevant, 4) == 1.0
    assert mrr_at_k(ranked, relevant, 10) == 0.5
    assert mrr_at_k(ranked, relevant, 1) == 0.0
    assert ndcg_at_k(["d2", "d1"], relevant, 10) == pytest.approx(1.0)
    assert recall_at_k(ranked, {}, 5) == 0.0


def _slice(source: Path, dest: Path, queries: int, distractors: int) -> Path:
    """A small BEIR set: the first queries, their relevant documents, and some others."""
    qrels: dict[str, dict[str, int]] = {}
    lines = (source / "qrels" / "test.tsv").read_text().splitlines()
    for line in lines[1:]:
        qid, doc, grade = line.split("\t")
        qrels.setdefault(qid, {})[doc] = int(grade)
    chosen = sorted(qrels)[:queries]
    wanted = {doc for qid in chosen for doc in qrels[qid]}
    corpus = [json.loads(line) for line in (source / "corpus.jsonl").open(encoding="utf-8")]
    others = [row for row in corpus if row["_id"] not in wanted]
    random.Random(0).shuffle(others)
    keep = [row for row in corpus if row["_id"] in wanted] + others[:distractors]
    (dest / "qrels").mkdir(parents=True)
    (dest / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in keep))
    all_queries = {json.loads(line)["_id"]: line
                   for line in (source / "queries.jsonl").open(encoding="utf-8")}
    (dest / "queries.jsonl").write_text("".join(all_queries[q] for q in chosen))
    (dest / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\t{d}\t{g}\n" for q in chosen for d, g in qrels[q].items()))
    return dest


@pytest.mark.integration
@pytest.mark.parametrize("name", ["scifact", "piaf-dev"])
def test_eval_runs_end_to_end_on_a_slice(name: str, tmp_path: Path) -> None:
    if not (SHARED / name).is_dir():
        pytest.skip(f"{SHARED / name} is not available")
    dataset = _slice(SHARED / name, tmp_path / name, queries=12, distractors=40)
    report = evaluate(make_settings(tmp_path / "unused"), dataset, workdir=tmp_path / "work",
                      modes=("bm25", "dense", "hybrid"))
    scores = {s.mode: s for s in report.scores}
    assert set(scores) == {"bm25", "dense", "hybrid"}
    assert all(s.queries == 12 for s in scores.values())
    # On a set this small every retriever finds most answers; the harness must say so.
    assert scores["bm25"].recall_at_20 > 0.6 and scores["hybrid"].ndcg_at_10 > 0.4
    # The reported MRR is the mean of each query's reciprocal rank, recomputed here from the
    # per-query rankings the harness wrote (and the dense retriever finds most answers first).
    recomputed = statistics.fmean(
        mrr_at_k(q["dense"]["top10"], q["relevant"], 10)  # type: ignore[index]
        for q in report.per_query)
    assert scores["dense"].mrr_at_10 == pytest.approx(recomputed)
    assert scores["dense"].mrr_at_10 > 0.4
    assert len(report.per_query) == 12 and "hybrid" in report.per_query[0]
    # The throwaway appliance's own log recorded the ingest and each mode scored.
    events = [json.loads(line)["event"]
              for line in (tmp_path / "work" / "data" / "audit" / "log.jsonl").open()]
    assert "ingest.begin" in events and "ingest.end" in events
    assert events.count("eval.search") == 3
    # A second run reuses the index: nothing is ingested again.
    again = evaluate(make_settings(tmp_path / "unused"), dataset, workdir=tmp_path / "work",
                     modes=("bm25",))
    assert again.scores[0].ndcg_at_10 == pytest.approx(scores["bm25"].ndcg_at_10)


@pytest.mark.integration
def test_golden_set_from_own_documents(tmp_path: Path) -> None:
    golden = tmp_path / "golden"
    docs = golden / "documents" / "hr"
    docs.mkdir(parents=True)
    (docs / "leave.md").write_text("# Leave\n\nEmployees get twenty-five days of paid leave.")
    (docs / "remote.md").write_text("# Télétravail\n\nDeux jours de télétravail par semaine.")
    (golden / "golden.jsonl").write_text(
        json.dumps({"query": "How many days of paid leave?", "expected": ["hr/leave.md"]}) + "\n"
        + json.dumps({"query": "Combien de jours de télétravail ?",
                      "expected": [{"path": "hr/remote.md", "grade": 2}]}) + "\n")
    report = evaluate(make_settings(tmp_path / "x"), golden, workdir=tmp_path / "work",
                      modes=("hybrid",))
    assert report.scores[0].ndcg_at_10 == pytest.approx(1.0)
    assert report.scores[0].mrr_at_10 == pytest.approx(1.0)


@pytest.mark.integration
def test_cross_encoder_reranking_plumbing(tmp_path: Path) -> None:
    """No reranker ships offline here: build a CrossEncoder from the local MiniLM weights
    (its scoring head is untrained) and check the plumbing, not its judgement."""
    from sentence_transformers import CrossEncoder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CrossEncoder(str(default_model_dir()), num_labels=1, device="cpu")
        model.save(str(tmp_path / "reranker"))
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, topic in enumerate(["printer", "parking", "canteen", "badge", "laptop"]):
        (docs / f"{topic}.txt").write_text(f"Note {i}: everything about the {topic} policy.")
    settings = make_settings(tmp_path / "data", search={"reranker_dir": str(tmp_path / "reranker"),
                                                        "rerank_top": 5})
    with open_appliance(settings) as app:
        app.ingest([docs])
        fused = app.searcher.search("parking policy",
                                    scope=app.operator_scope, k=5, mode="hybrid").passages
        reranked = app.searcher.search("parking policy",
                                       scope=app.operator_scope, k=5, mode="hybrid+rerank")
        assert "rerank_ms" in reranked.timings_ms
        assert {p.chunk_id for p in reranked.passages} == {p.chunk_id for p in fused}
        scores = [p.score for p in reranked.passages]
        assert scores == sorted(scores, reverse=True)  # ordered by the cross-encoder
        app.searcher.reranker.budget_ms = 0.0  # type: ignore[union-attr]
        timed_out = app.searcher.search("parking policy",
                                        scope=app.operator_scope, k=5, mode="hybrid+rerank")
        # Out of budget: the fused order stands.
        assert [p.chunk_id for p in timed_out.passages] == [p.chunk_id for p in fused]
