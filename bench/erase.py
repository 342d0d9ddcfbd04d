"""Erasure time on a large embedded store, phase by phase.

A store of N synthetic chunks (random unit vectors, BM25 vectors from a Zipf vocabulary,
sealed payloads under real per-content data keys, 10 chunks per content) is built through
the store API, with the real data-key store (wrapped keys) and a real encrypted original for the
content that is erased. Then one content is erased with the same steps as `greffier erase`
(appliance/_erase.py), each timed: collect the evidence, scan before, destroy the key,
delete the points, rebuild the store, scan after.

Usage: ``python bench/erase.py [--chunks 100000]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import print_table, write_json

DIM = 384
PER_CONTENT = 10


def _build(store, deks, cipher, n: int) -> None:  # type: ignore[no-untyped-def]
    from ingest import Chunk
    from retrieval import Analyzer, IndexedChunk, Source

    analyzer = Analyzer()
    rng = np.random.default_rng(0)
    vocab = np.array([f"term{i}" for i in range(20000)])
    weights = 1 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    for start in range(0, n, 4096):
        size = min(4096, n - start)
        vecs = rng.normal(size=(size, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        words = rng.choice(len(vocab), size=(size, 60), p=weights)
        batch = []
        for i, vec, row in zip(range(start, start + size), vecs, words, strict=True):
            content = f"{i // PER_CONTENT:064x}"
            if i % PER_CONTENT == 0:
                cipher.new_content_key(content)
            text = " ".join(vocab[row])
            chunk = Chunk(content_hash=content, index=i % PER_CONTENT, text=text, page=1,
                          section="", lang="en", kind="text", format="txt")
            batch.append(IndexedChunk(chunk, vec, analyzer.document_vector(text, "en"),
                                      (Source(f"doc-{i // PER_CONTENT}", f"/b/{i}.txt", 1,
                                              ("g:all",)),),
                                      "bench@0"))
        store.upsert(batch)
    store.flush()
    store.optimize()


def run(n: int, work: Path) -> dict[str, object]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from appliance._evidence import (
        blob_target,
        key_target,
        point_targets,
        shared_with_live,
    )
    from appliance._scan import scan_tree
    from retrieval import EdgeStore
    from security import (
        Argon2Params,
        ContentCipher,
        PassphraseKEK,
        SqliteDekStore,
        UnsealedKeys,
    )

    data = work / "data"
    data.mkdir()
    deks = SqliteDekStore(data / "data-keys.sqlite3")
    keys = UnsealedKeys(PassphraseKEK("bench", Argon2Params.fresh()), os.urandom(32),
                        os.urandom(32), Ed25519PrivateKey.generate())
    cipher = ContentCipher(keys, deks)  # wrapped keys in the real key store (SQLite, WAL)
    store = EdgeStore(data / "qdrant", cipher)
    store.open(DIM)
    t0 = time.perf_counter()
    _build(store, deks, cipher, n)
    load_s = time.perf_counter() - t0
    victim = f"{(n // PER_CONTENT) // 2:064x}"
    source = work / "original.bin"
    source.write_bytes(np.random.default_rng(1).bytes(200_000))
    blob = data / "blobs" / victim[:2] / f"{victim}.blob"
    blob.parent.mkdir(parents=True)
    cipher.encrypt_original(source, blob, victim)

    timings: dict[str, float] = {}

    def timed(name: str, t: float) -> None:
        timings[name] = time.perf_counter() - t

    t = time.perf_counter()
    stored = store.stored(victim)
    targets = (key_target(deks.wrapped_dek(victim, keys.kek_id))
               + blob_target(blob) + point_targets(stored, set()))
    timed("evidence", t)
    t = time.perf_counter()
    before = scan_tree(data, targets)
    timed("scan before", t)
    t = time.perf_counter()
    cipher.destroy(victim)
    deks.purge_journal()
    timed("key destruction", t)
    t = time.perf_counter()
    store.delete_content(victim)
    store.flush()
    timed("delete points", t)
    t = time.perf_counter()
    store.purge()
    blob.unlink()
    timed("rebuild", t)
    t = time.perf_counter()
    shared = shared_with_live(store, stored)
    after = scan_tree(data, [x for x in targets
                             if not (x.kind.endswith("_vectors") and x.label in shared)])
    timed("scan after", t)
    size_mb = sum(p.stat().st_blocks * 512 for p in data.rglob("*") if p.is_file()) / 1e6
    store.close()
    deks.close()
    return {
        "chunks": n, "load_s": load_s, "erased_points": len(stored),
        "targets": len(targets), "seen_before": len(before.found), "found_after": len(after.found),
        "files_scanned": after.files_scanned, "bytes_scanned": after.bytes_scanned,
        "disk_mb": size_mb, "seconds": timings, "total_s": sum(timings.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="greffier-bench-erase-"))
    try:
        result = run(args.chunks, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = result["seconds"]
    assert isinstance(seconds, dict)
    rows = [{"phase": k, "seconds": v} for k, v in seconds.items()]
    rows.append({"phase": "total", "seconds": result["total_s"]})
    print_table(f"Erasure of one content ({result['erased_points']} chunks) in a store of "
                f"{result['chunks']} chunks ({result['disk_mb']:.0f} MB on disk, "
                f"{result['bytes_scanned'] / 1e6:.0f} MB read per scan)", rows)
    print(f"patterns: {result['targets']}, seen before: {result['seen_before']}, "
          f"found after: {result['found_after']}")
    write_json("erase", {"erase": result, "rows": rows})


if __name__ == "__main__":
    main()
