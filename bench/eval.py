"""Retrieval quality on the shared BEIR sets, through the real pipeline (greffier eval).

Usage: ``python bench/eval.py [--datasets ../shared/data/piaf-dev ../shared/data/scifact]``.
Writes bench/results/eval.json. The sets are read from ../shared (never shipped).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import print_table, write_json

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", type=Path,
                        default=[SHARED / "piaf-dev", SHARED / "scifact"])
    args = parser.parse_args()
    from appliance import load_settings
    from appliance._evaluate import evaluate, report_dict

    results = []
    for dataset in args.datasets:
        with tempfile.TemporaryDirectory(prefix="greffier-eval-") as tmp:
            report = evaluate(load_settings(None, data_dir=tmp), dataset,
                              workdir=Path(tmp) / "work", modes=("bm25", "dense", "hybrid"))
        summary = report_dict(report)
        results.append(summary)
        rows = [{"mode": s["mode"], "nDCG@10": s["ndcg_at_10"], "Recall@5": s["recall_at_5"],
                 "Recall@20": s["recall_at_20"], "MRR@10": s["mrr_at_10"],
                 "ms/query": s["ms_per_query"]} for s in summary["scores"]]  # type: ignore[union-attr]
        print_table(f"{summary['dataset']}: {summary['documents']} documents, "
                    f"{summary['chunks']} chunks, ingest {summary['ingest_seconds']} s", rows)
    write_json("eval", {"datasets": results})


if __name__ == "__main__":
    main()
