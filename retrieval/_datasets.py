"""Evaluation sets: BEIR folders, and golden sets users build from their own documents.

BEIR layout: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``), ``qrels/test.tsv`` (``query-id``, ``corpus-id``, ``score``, with a header).

Golden-set layout: ``documents/`` (any files Greffier ingests) and ``golden.jsonl`` with one
``{"query": "...", "expected": ["relative/path.pdf", ...]}`` per line; a path may carry a
grade: ``{"path": "a.pdf", "grade": 2}``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from security import ConfigError


@dataclass
class EvalSet:
    name: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    # BEIR: documents to write out (id → (title, text)); golden: a folder to ingest as is.
    corpus: dict[str, tuple[str, str]] = field(default_factory=dict)
    documents_dir: Path | None = None


def load_eval_set(folder: Path) -> EvalSet:
    if (folder / "corpus.jsonl").is_file():
        return _load_beir(folder)
    if (folder / "golden.jsonl").is_file():
        return _load_golden(folder)
    raise ConfigError(
        f"{folder} is neither a BEIR set nor a golden set.",
        hint="Give a folder with corpus.jsonl, queries.jsonl and qrels/test.tsv, or one with "
        "golden.jsonl and documents/.",
    )


def _load_beir(folder: Path) -> EvalSet:
    corpus = {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            corpus[str(row["_id"])] = (str(row.get("title") or ""), str(row.get("text") or ""))
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            queries[str(row["_id"])] = str(row["text"])
    qrels: dict[str, dict[str, int]] = {}
    qrels_file = folder / "qrels" / "test.tsv"
    with qrels_file.open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for row in reader:
            if not row or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {qid: text for qid, text in queries.items() if qid in qrels}
    return EvalSet(folder.name, queries, qrels, corpus=corpus)


def _load_golden(folder: Path) -> EvalSet:
    documents = folder / "documents"
    if not documents.is_dir():
        raise ConfigError(f"{folder}/documents is missing.",
                          hint="Put the documents the golden queries refer to in documents/.")
    queries, qrels = {}, {}
    with (folder / "golden.jsonl").open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            qid = str(row.get("id") or f"q{number}")
            queries[qid] = str(row["query"])
            grades = {}
            for item in row["expected"]:
                if isinstance(item, str):
                    grades[item] = 1
                else:
                    grades[str(item["path"])] = int(item.get("grade", 1))
            qrels[qid] = grades
    return EvalSet(folder.name, queries, qrels, documents_dir=documents)
