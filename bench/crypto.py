"""Share of ingest and search time spent in cryptography.

Wraps every cryptographic call of the appliance with a timer (chunk sealing and opening,
data-key creation and unwrapping, original-file encryption, keyed term ids, audit sealing,
receipt and tree-head signatures) and runs a real ingest and real searches.
Usage: ``python bench/crypto.py [--docs 120] [--queries 100]``.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _common import print_table, write_json

SPENT: dict[str, float] = defaultdict(float)
_DEPTH = [0]


def _timed(owner: Any, name: str, label: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _DEPTH[0] += 1
        start = time.perf_counter()
        try:
            result = original(*args, **kwargs)
            if hasattr(result, "__next__"):  # a generator: consume it inside the timer
                result = list(result)
            return result
        finally:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0:
                SPENT[label] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def instrument() -> None:
    import security._audit as audit
    import security._receipt as receipt
    from retrieval import Analyzer
    from security import ContentCipher

    for name in ("seal_chunk", "open_chunk", "new_content_key", "encrypt_original", "_dek"):
        _timed(ContentCipher, name, f"cipher.{name}")
    _timed(Analyzer, "term_id", "keyed term ids")
    _timed(audit._aead, "seal", "audit seal")
    _timed(audit, "sign", "tree head signature")
    _timed(receipt, "sign", "receipt signature")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=120)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    instrument()
    from appliance import Appliance, load_settings
    from security import KekSource

    from corpus import build_bulk

    work = Path(tempfile.mkdtemp(prefix="greffier-bench-crypto-"))
    docs = work / "docs"
    docs.mkdir()
    build_bulk(docs, args.docs, seed=3)
    settings = load_settings(None, data_dir=str(work / "data"))
    source = KekSource("passphrase", "bench passphrase")
    t0 = time.perf_counter()
    Appliance.init(settings, source)
    init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    app = Appliance.open(settings, source)
    unseal_s = time.perf_counter() - t0
    app.encoder.encode_passages(["warm-up"])
    SPENT.clear()
    t0 = time.perf_counter()
    app.ingest([docs])
    ingest_s = time.perf_counter() - t0
    ingest_crypto = dict(SPENT)
    SPENT.clear()
    words = ["policy", "review", "budget", "section", "report", "access", "process", "team"]
    t0 = time.perf_counter()
    for i in range(args.queries):
        app.search(f"{words[i % 8]} {words[(i * 3) % 8]} {i}", k=10)
    search_s = time.perf_counter() - t0
    search_crypto = dict(SPENT)
    app.close()
    rows = [
        {"phase": "ingest", "total s": ingest_s, "crypto s": sum(ingest_crypto.values()),
         "crypto share %": 100 * sum(ingest_crypto.values()) / ingest_s},
        {"phase": f"search x{args.queries}", "total s": search_s,
         "crypto s": sum(search_crypto.values()),
         "crypto share %": 100 * sum(search_crypto.values()) / search_s},
    ]
    print_table("Time in cryptography (target < 5 %)", rows)
    detail = [{"phase": phase, "operation": op, "seconds": s}
              for phase, spent in (("ingest", ingest_crypto), ("search", search_crypto))
              for op, s in sorted(spent.items(), key=lambda kv: -kv[1])]
    print_table("Breakdown", detail)
    print_table("One-off key operations", [{"init (Argon2id + keys) s": init_s,
                                            "unseal (Argon2id) s": unseal_s}])
    write_json("crypto", {"shares": rows, "breakdown": detail,
                          "init_s": init_s, "unseal_s": unseal_s})
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
