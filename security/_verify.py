"""Checking an audit log from its lines alone: what ``greffier audit verify``, an auditor
with a bundle and the appliance at unseal all run (see ``_audit.py`` and FORMAT.md).

Nothing here needs a key but the signing keys' public halves; the anchor and the entry MACs
are checked by :class:`AuditLog`, which holds the keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _merkle
from ._signing import TrustedKeys, fingerprint


def entry_bytes(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def read_lines(path: Path) -> list[str]:
    """The lines of a log file, split on newlines only (a JSON string may hold U+2028)."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n") if text else []


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def parse_line(line: str) -> dict[str, Any]:
    """One log or head line, exactly as written: canonical JSON, no duplicate keys (a line
    that parses to the same entry but reads differently to grep is refused)."""
    try:
        document = json.loads(line, object_pairs_hook=_no_duplicates)
        if not isinstance(document, dict) or line.encode() != entry_bytes(document):
            raise ValueError("not canonical")
    except (RecursionError, UnicodeError) as exc:
        raise ValueError(str(exc)) from exc
    return document


# What a sealed appliance may append (a failed unseal); anything else after the last signed
# head was written by someone without the keys.
SEALED_EVENTS = {"unseal.failed": {"kek", "reason"}}


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    heads: int
    problem: str = ""
    bad_index: int | None = None
    signed_size: int = 0  # entries covered by the last signed head
    unsigned_events: tuple[str, ...] = ()  # events of the entries after it
    signers: tuple[str, ...] = ()  # fingerprints of the keys that signed the heads
    roots: dict[int, bytes] = field(default_factory=dict, repr=False, compare=False)
    leaves: list[bytes] = field(default_factory=list, repr=False, compare=False)
    tail: tuple[dict[str, Any], ...] = field(default=(), repr=False, compare=False)
    documents: tuple[dict[str, Any], ...] = field(default=(), repr=False, compare=False)


def _fail(entries: int, heads: int, problem: str, bad: int | None = None) -> VerifyReport:
    return VerifyReport(False, entries, heads, problem, bad)


def scan_log(log_lines: Sequence[str], head_lines: Sequence[str],
             public_keys: bytes | Sequence[bytes] | TrustedKeys, *,
             extra_sizes: Sequence[int] = ()) -> VerifyReport:
    """Check a whole log in one pass: indices, hash chain, every signed head. Names the
    first bad entry. ``extra_sizes``: tree sizes whose roots the caller wants (in
    ``report.roots``), for the anchor and for ``--since``."""
    keys = TrustedKeys.of(public_keys)
    heads: list[dict[str, Any]] = []
    for number, line in enumerate(head_lines):
        try:
            head = parse_line(line)
            if not isinstance(head["tree_size"], int) or not isinstance(head["root"], str):
                raise ValueError("bad field types")
        except (ValueError, KeyError):
            return _fail(0, number, f"signed tree head {number} is not a valid head line")
        heads.append(head)
    wanted = {int(h["tree_size"]) for h in heads} | set(extra_sizes)
    frontier = _merkle.Frontier()
    roots: dict[int, bytes] = {0: frontier.root()} if 0 in wanted else {}
    leaves: list[bytes] = []
    events: list[dict[str, Any]] = []
    for position, line in enumerate(log_lines):
        try:
            entry = parse_line(line)
        except ValueError:
            return _fail(position, 0, f"entry {position} is not a canonical JSON entry "
                         "(altered, or written by other software)", position)
        if entry.get("index") != position:
            return _fail(position, 0, f"entry {position} carries index {entry.get('index')}: "
                         "an entry was deleted, inserted or moved here", position)
        expected_prev = leaves[-1].hex() if leaves else ""
        if entry.get("prev") != expected_prev:
            return _fail(position, 0, f"entry {position - 1} was altered (entry {position} "
                         "no longer links to it)", position - 1)
        leaf = _merkle.leaf_hash(line.encode())
        leaves.append(leaf)
        events.append(entry)
        frontier.append(leaf)
        if frontier.size in wanted:
            roots[frontier.size] = frontier.root()
    signers: list[str] = []
    last = 0
    for number, head in enumerate(heads):
        size = int(head["tree_size"])
        signer = keys.signer(head, size)
        if signer is None:
            return _fail(len(leaves), number, f"signed tree head {number} has a bad signature "
                         "(or was signed by a key this verifier does not trust for it)")
        if size < last:
            return _fail(len(leaves), number, f"signed tree head {number} covers {size} "
                         f"entries, fewer than an earlier head ({last}): heads were rolled "
                         "back or reordered")
        if size > len(leaves):
            return _fail(len(leaves), number, f"the log was truncated: a signed head covers "
                         f"{size} entries, {len(leaves)} remain", len(leaves))
        if roots[size].hex() != head["root"]:
            # With the hash chain intact, a root mismatch can only come from the last entry
            # the head covers.
            return _fail(len(leaves), number, f"entry {size - 1} was altered (tree head "
                         f"{number} no longer matches)", size - 1)
        last = size
        if fingerprint(signer) not in signers:
            signers.append(fingerprint(signer))
    ok = bool(heads) or not leaves
    problem = "" if ok else ("no signed tree head covers the log: it cannot be told from a "
                             "forgery")
    tail = events[last:]
    return VerifyReport(ok, len(leaves), len(heads), problem, signed_size=last,
                        unsigned_events=tuple(str(e.get("event")) for e in tail),
                        signers=tuple(signers), roots=roots, leaves=leaves,
                        tail=tuple(tail), documents=tuple(events))


def unexpected_tail(report: VerifyReport, mac_ok: Callable[[dict[str, Any]], bool]) -> str:
    """Why an entry after the last signed head was not written by this appliance (empty
    when all were): either it carries a valid MAC under the audit key (written unsealed,
    before a crash left it unsigned), or it is a failed unseal of its exact shape (written
    sealed)."""
    for entry in report.tail:
        if "mac" in entry and mac_ok(entry):
            continue
        allowed = SEALED_EVENTS.get(str(entry.get("event")))
        details = entry.get("details")
        if (allowed is None or "sealed" in entry or "mac" in entry
                or not isinstance(details, dict) or set(details) != allowed):
            return (f"entry {entry.get('index')} ({entry.get('event')!r}) follows the last "
                    "signed head but is not what a sealed appliance writes: it was added "
                    "without the keys")
    return ""


def check_witnesses(report: VerifyReport, witnessed: Sequence[dict[str, Any]],
                    keys: TrustedKeys) -> tuple[bool, str]:
    """Check the log against copies kept outside (a sink's lines, an auditor's heads):
    every head must be signed and be a prefix of the log, every entry copy must match the
    entry at its index. ``report`` must carry the roots of the heads' sizes."""
    heads = 0
    for document in witnessed:
        if document.get("kind") == "entry":
            index = document.get("index")
            entry = {k: v for k, v in document.items() if k != "kind"}
            if (not isinstance(index, int) or not 0 <= index < report.entries
                    or _merkle.leaf_hash(entry_bytes(entry)) != report.leaves[index]):
                return False, (f"entry {index} differs from (or is missing against) the copy "
                               "sent outside when it was written")
            continue
        head = {k: v for k, v in document.items() if k != "kind"}
        size = head.get("tree_size")
        if not isinstance(size, int) or keys.signer(head, size) is None:
            return False, "a head kept outside is not signed by a trusted key"
        grew, why = extends(report, head)
        if not grew:
            return False, f"{why} (head of {size} entries at {head.get('time')})"
        heads += 1
    return True, f"{heads} heads and {len(witnessed) - heads} entries kept outside match"


def verify_log(log_lines: Sequence[str], head_lines: Sequence[str],
               public_keys: bytes | Sequence[bytes] | TrustedKeys) -> VerifyReport:
    """Check a whole log: indices, hash chain, every signed head. Names the first bad entry."""
    return scan_log(log_lines, head_lines, public_keys)


def extends(report: VerifyReport, head: dict[str, Any]) -> tuple[bool, str]:
    """Whether the scanned log is a consistent extension of an earlier signed ``head``."""
    size = int(head["tree_size"])
    if size > report.entries:
        return False, (f"the log was rolled back: a head covered {size} entries, "
                       f"{report.entries} remain")
    known = report.roots.get(size)
    if known is not None and known.hex() != head["root"]:
        return False, (f"the log was rolled back or rewritten: its first {size} entries no "
                       "longer match a head signed earlier")
    old_root = bytes.fromhex(str(head["root"]))
    new_size = report.entries
    proof = _merkle.consistency_proof(size, report.leaves)
    new_root = _merkle.root(report.leaves)
    if not _merkle.verify_consistency(size, new_size, proof, old_root, new_root):
        return False, (f"the log was rewritten: its first {size} entries no longer match "
                       "the earlier head")
    return True, (f"the log only grew: the head of {size} entries is a prefix of the "
                  f"{new_size} now (consistency proof of {len(proof)} hashes verified)")
