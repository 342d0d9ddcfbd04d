"""Search, ask, receipts: the reading use cases."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from generation import Answer
from retrieval import Passage, SearchFilter
from security import ForbiddenError, InvalidRequestError, NotFoundError

from ._access import readable_passages
from ._models import AskIn, AskOut, CitationOut, Filters, PassageOut, SearchIn, SearchOut
from ._principal import Principal
from ._runtime import Runtime


def search(rt: Runtime, who: Principal, req: SearchIn) -> SearchOut:
    """Search, audited as ``who``, with a signed receipt kept for the caller."""
    who.require("search")
    answer_id = uuid.uuid4().hex
    with rt.reading() as app:  # alongside other searches
        if req.mode == "hybrid+rerank" and app.searcher.reranker is None:
            raise InvalidRequestError("This appliance has no reranker.",
                                      hint="Use mode hybrid, or ask the admin to set "
                                      "search.reranker_dir.")
        result, receipt = app.search(req.query, scope=who.scope, k=req.k,
                                     flt=_filter(req.filters), mode=req.mode,
                                     user=who.audit_name, receipt_id=answer_id)
    rt.observe("greffier_stage_seconds", result.timings_ms.get("total_ms", 0.0) / 1000,
               stage="search")
    rt.identity.save_answer(who, answer_id, "search", receipt, None, None, None)
    return SearchOut(id=answer_id, query=req.query, mode=req.mode,
                     passages=passages_out(readable_passages(who, result.passages)),
                     receipt_id=answer_id,
                     timings_ms=result.timings_ms)


def ask(rt: Runtime, who: Principal, req: AskIn,
        on_token: Callable[[str], None] = lambda t: None) -> AskOut:
    """Answer from the documents (or refuse, or degrade to passages), audited, with a
    signed receipt; the turn is kept (sealed) in the caller's conversation."""
    who.require("ask")
    if req.conversation_id is not None:
        rt.identity.conversation(who, req.conversation_id)  # own conversations only
    answer_id = uuid.uuid4().hex
    app = rt.appliance()  # not held while the model writes: Appliance.ask guards its parts
    answer, receipt = app.ask(req.question, on_token=on_token, scope=who.scope,
                              flt=_filter(req.filters), user=who.audit_name,
                              receipt_id=answer_id)
    if len(readable_passages(who, answer.passages)) != len(answer.passages):
        raise ForbiddenError("An answer drew on a passage its reader may not read; withheld.",
                             hint="Report this: the store's access filter failed.")
    for stage in ("retrieval", "first_token", "generation"):
        if f"{stage}_ms" in answer.timings_ms:
            rt.observe("greffier_stage_seconds", answer.timings_ms[f"{stage}_ms"] / 1000,
                       stage=stage)
    rt.count("greffier_answers_total", outcome="refused" if answer.refused else
             "degraded" if answer.degraded else "answered")
    conv = rt.identity.save_answer(who, answer_id, "answer", receipt, req.conversation_id,
                                   req.question, answer.text)
    return ask_out(answer_id, answer, conv)


def receipt(rt: Runtime, who: Principal, answer_id: str) -> dict[str, Any]:
    """A signed receipt: to whoever asked, or to an auditor."""
    found: dict[str, Any] | None = rt.identity.answer_receipt(who, answer_id)
    if found is None:
        raise NotFoundError(f"No answer {answer_id!r}.")
    return found


def ask_out(answer_id: str, answer: Answer, conversation_id: str | None) -> AskOut:
    return AskOut(
        id=answer_id, question=answer.question, answer=answer.text, refused=answer.refused,
        degraded=answer.degraded, notice=answer.notice, lang=answer.lang, model=answer.model,
        citations=[CitationOut(number=c.number, valid=c.valid) for c in answer.citations],
        passages=passages_out(answer.passages), receipt_id=answer_id,
        conversation_id=conversation_id, timings_ms=answer.timings_ms)


def passages_out(passages: list[Passage]) -> list[PassageOut]:
    out = []
    for number, p in enumerate(passages, 1):
        version = p.sources[0].version if p.sources else 0
        out.append(PassageOut(
            number=number, chunk_id=p.chunk_id, text=p.text, score=round(p.score, 6),
            doc_id=p.doc_id, document=PurePath(p.path).name, page=p.page, section=p.section,
            lang=p.lang, version=version, content_sha256=p.content_hash))
    return out


def _filter(filters: Filters | None) -> SearchFilter | None:
    if filters is None:
        return None
    values = {k: tuple(v) for k, v in filters.model_dump().items() if v}
    return SearchFilter(**values) if values else None
