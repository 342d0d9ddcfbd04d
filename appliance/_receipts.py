"""The audit entry and signed receipt of a search or an answer.

A receipt names the passages (chunk, content hash, document, version), the models (and
their weights' hashes), keyed hashes of the question and answer (never their text, which
is sealed in the audit entry), and the audit entry's inclusion in the signed log.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from generation import Answer
from retrieval import AccessScope, Passage, SearchMode, SearchResult
from security import issue_receipt

if TYPE_CHECKING:
    from ._appliance import Appliance


def _refs(passages: list[Passage]) -> list[dict[str, Any]]:
    return [{"chunk_id": p.chunk_id, "content_sha256": p.content_hash, "doc_id": p.doc_id,
             "version": p.version} for p in passages]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def record_search(app: Appliance, query: str, result: SearchResult, mode: SearchMode,
                  user: str, receipt_id: str | None, scope: AccessScope) -> dict[str, Any]:
    """Audit a search with the access scope it ran under, and sign its receipt
    (``receipt_id``: the service's answer id)."""
    ident = app.encoder.identity
    passages = _refs(result.passages)
    index = app.audit.append(
        "search", user,
        {"mode": mode, "passages": passages, "embedder": ident.id,
         "question_hmac": app.audit.question_hash(query), "scope": sorted(scope.entries)},
        secret={"question": query})
    return issue_receipt(app.audit, index, {
        **({"id": receipt_id} if receipt_id else {}),
        "kind": "search", "question_hmac": app.audit.question_hash(query),
        "user": user,
        "passages": passages,
        "model": {"embedder": ident.name, "embedder_sha256": ident.weights_sha256},
        "time": _now(), "answer_sha256": None,
    }, app.keys.signing_key)


def record_answer(app: Appliance, question: str, answer: Answer, user: str,
                  receipt_id: str | None) -> dict[str, Any]:
    """Audit an answer (question and answer sealed) and sign its receipt."""
    ident = app.encoder.identity
    body = {
        **({"id": receipt_id} if receipt_id else {}),
        "kind": "answer", "question_hmac": app.audit.question_hash(question),
        "user": user,
        "passages": _refs(answer.passages),
        "model": {"name": answer.model, "weights_sha256": answer.model_sha256,
                  "embedder": ident.name, "embedder_sha256": ident.weights_sha256},
        "prompt_template": answer.template_version,
        "sampling": dataclasses.asdict(answer.sampling),
        "answer_hmac": app.audit.question_hash(answer.text), "refused": answer.refused,
        "degraded": answer.degraded,
        "citations": [c.number for c in answer.citations if c.valid],
        "time": _now(),
    }
    index = app.audit.append(
        "ask", user, {k: v for k, v in body.items() if k not in ("kind", "user", "id")},
        secret={"question": question, "answer": answer.text})
    return issue_receipt(app.audit, index, body, app.keys.signing_key)
