"""What the audit log's checks cost: opening (the whole log verified against its heads and
anchor), a receipt (head signed and persisted, inclusion proof), and `audit verify`.

Run: python bench/audit.py --sizes 10000 100000  (table on stdout, bench/results/audit.json)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from security import Anchor, AuditLog, issue_receipt, read_lines, verify_log
from security._kek import Argon2Params, PassphraseKEK

from _common import print_table, write_json


def run(size: int, work: Path) -> dict[str, object]:
    folder = work / f"audit-{size}"
    signing = Ed25519PrivateKey.generate()
    wrapper = PassphraseKEK("bench", Argon2Params.fresh())
    keys = [(0, os.urandom(32))]
    anchor = Anchor(folder / "anchor.1", wrapper, required=False)
    log = AuditLog(folder, keys, signing, anchor=anchor)
    for number in range(size):  # a realistic mix: searches with a sealed question
        log.append("search", "bench", {"mode": "hybrid", "passages": [{"chunk_id": str(number)}],
                                       "question_hmac": log.question_hash(str(number))},
                   secret={"question": f"question {number}"})
    log.sign_head()
    started = time.perf_counter()
    log = AuditLog(folder, keys, signing, anchor=Anchor(folder / "anchor.1", wrapper))
    open_s = time.perf_counter() - started
    receipts = []
    for number in range(20):
        started = time.perf_counter()
        index = log.append("search", "bench", {"n": number})
        issue_receipt(log, index, {"kind": "search"}, signing)
        receipts.append(time.perf_counter() - started)
    public = signing.public_key().public_bytes_raw()
    started = time.perf_counter()
    report = verify_log(read_lines(folder / "log.jsonl"), read_lines(folder / "heads.jsonl"),
                        public)
    verify_s = time.perf_counter() - started
    assert report.ok
    return {"entries": size, "open_s": round(open_s, 3),
            "receipt_ms_p50": round(statistics.median(receipts) * 1000, 1),
            "verify_s": round(verify_s, 3),
            "log_mb": round((folder / "log.jsonl").stat().st_size / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(size, Path(tmp)) for size in args.sizes]
    print_table("Audit log", rows)
    write_json("audit", {"rows": rows})


if __name__ == "__main__":
    main()
