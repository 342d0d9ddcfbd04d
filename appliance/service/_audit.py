"""The audit trail for auditors: the signed head, a full verification, the entries (their
clear part: the sealed part holds questions and file names, which an auditor does not
read)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from security import check_witnesses, read_lines, scan_log, witnessed_in
from security._verify import parse_line

from ._models import AuditEntryOut, AuditHeadOut, Page, VerifyOut
from ._principal import Principal
from ._runtime import Runtime


def head(rt: Runtime, who: Principal) -> AuditHeadOut:
    who.require("audit")
    with rt.using() as app:
        signed = app.audit.sign_head()
        key = app.keys.public_key
    return AuditHeadOut(tree_head=signed, public_key=base64.b64encode(key).decode())


def verify(rt: Runtime, who: Principal) -> VerifyOut:
    """Check the whole log (hash chain, every signed head) and the head copies; audited."""
    who.require("audit")
    with rt.using() as app:
        folder = app.settings.data_dir / "audit"
        keys = app.keys.trusted_keys
        copies = [witnessed_in(Path(sink.removeprefix("file:")))
                  for sink in app.settings.audit.head_sinks if sink.startswith("file:")]
        report = scan_log(read_lines(folder / "log.jsonl"), read_lines(folder / "heads.jsonl"),
                          keys, extra_sizes=[d["tree_size"] for copy in copies for d in copy
                                             if d["kind"] == "head"])
        problems = [] if report.ok else [report.problem]
        for copy in copies if report.ok else []:
            agree, why = check_witnesses(report, copy, keys)
            if not agree:
                problems.append(why)
        app.audit.append("audit.verify", who.audit_name,
                         {"ok": not problems, "entries": report.entries})
    return VerifyOut(ok=not problems, entries=report.entries, problems=problems)


def entries(rt: Runtime, who: Principal, *, offset: int = 0, limit: int = 100) -> Page:
    """The log's entries, clear part only, oldest first."""
    who.require("audit")
    with rt.using() as app:
        lines = read_lines(app.settings.data_dir / "audit" / "log.jsonl")
        app.audit.append("audit.read", who.audit_name, {"offset": offset, "limit": limit})
    items = [_entry(number, line) for number, line in
             enumerate(lines[offset:offset + limit], offset)]
    following = offset + limit
    return Page(items=items, total=len(lines), offset=offset, limit=limit,
                next_offset=following if following < len(lines) else None)


def _entry(number: int, line: str) -> AuditEntryOut:
    try:
        entry: dict[str, Any] = parse_line(line)
    except ValueError:
        return AuditEntryOut(index=number, time=None, event=None, user=None,
                             details={"unreadable": True})
    details = {k: v for k, v in entry.items()
               if k not in ("index", "time", "event", "user", "secret", "mac", "prev")}
    return AuditEntryOut(index=int(entry.get("index", number)), time=entry.get("time"),
                         event=entry.get("event"), user=entry.get("user"), details=details)


_READS = ("search", "ask", "download", "export")


def reads(rt: Runtime, who: Principal, doc_id: str) -> list[AuditEntryOut]:
    """Who read a document, when: the searches and answers that returned one of its
    passages, and its downloads (from the clear part of the log; the document may since
    have been erased). Audited."""
    who.require("audit")
    with rt.using() as app:
        doc = app.catalog.document_by_id(doc_id)
        hashes = {doc.content_hash} if doc else set()
        lines = read_lines(app.settings.data_dir / "audit" / "log.jsonl")
        app.audit.append("audit.reads", who.audit_name, {"doc_id": doc_id})
    found = []
    for number, line in enumerate(lines):
        entry = _entry(number, line)
        if entry.event not in _READS:
            continue
        details = entry.details.get("details") or {}
        passages = details.get("passages") or []
        if any(p.get("doc_id") == doc_id or p.get("content_sha256") in hashes
               for p in passages) or details.get("content_sha256") in hashes:
            found.append(entry)
    return found
