"""Search latency at 10k and 100k chunks (and more with --sizes) for both Qdrant back-ends.

Points are synthetic (random unit vectors around 200 topics, BM25 vectors from a Zipf-like
vocabulary) because embedding 100k real passages takes hours on this CPU; the store does
not care where vectors come from. Query embedding time is measured separately on the real
model. Prints p50/p95 per leg and for the fused hybrid search, and on-disk size.

Usage: ``python bench/search.py [--sizes 10000 100000] [--queries 200]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import bench_cipher, print_table, write_json

GROUPS = 20  # teams; a one-team reader may read 1 document in 20
WARM_UP = 20  # queries run before measuring
DIM = 384


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _items(n: int, rng: np.random.Generator, batch: int = 4096):  # type: ignore[no-untyped-def]
    """Synthetic chunks in batches: 200 topic clusters, Zipf-distributed 60-word texts."""
    from ingest import Chunk
    from retrieval import Analyzer, IndexedChunk, Source

    analyzer = Analyzer()
    vocab = np.array([f"term{i}" for i in range(20000)])
    weights = 1 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    centers = rng.normal(size=(200, DIM)).astype(np.float32)
    for start in range(0, n, batch):
        size = min(batch, n - start)
        ids = np.arange(start, start + size)
        vecs = centers[ids % 200] + 0.5 * rng.normal(size=(size, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        words = rng.choice(len(vocab), size=(size, 60), p=weights)
        out = []
        for i, vec, row in zip(ids, vecs, words, strict=True):
            text = " ".join(vocab[row])
            chunk = Chunk(content_hash=f"{i // 8:064x}", index=int(i % 8), text=text, page=1,
                          section="", lang="en", kind="text", format="txt")
            out.append(IndexedChunk(chunk, vec, analyzer.document_vector(text, "en"),
                                    (Source(f"doc-{i // 8}", f"/bench/{i // 8}.txt", 1,
                                            ("g:all", f"g:team{(i // 8) % GROUPS}")),),
                                    "bench@0"))
        yield out


def _rss_mb() -> float:
    """Current resident memory of this process (the store lives in it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def _size(path: Path) -> float:
    """Allocated size (like du): the Edge WAL preallocates sparse files."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file()) / 1e6


def bench_store(kind: str, n: int, queries: int, work: Path) -> dict[str, object]:
    from retrieval import AccessScope, Analyzer, ClientStore, EdgeStore, FusionPolicy

    # Every document is readable by "all" and by one of GROUPS teams: the "all" reader is the
    # unfiltered figure, a one-team reader sees 1 document in GROUPS (the access filter).
    everyone = AccessScope(frozenset({"g:all"}))
    one_team = AccessScope(frozenset({"g:team7"}))
    path = work / f"{kind}-{n}"
    cipher = bench_cipher()
    store = (EdgeStore(path, cipher) if kind == "embedded"
             else ClientStore(collection="b", cipher=cipher, path=path))
    store.open(DIM)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for batch in _items(n, rng):
        for content_hash in {item.chunk.content_hash for item in batch}:
            cipher.new_content_key(content_hash)
        store.upsert(batch)
    store.flush()
    store.optimize()
    load_s = time.perf_counter() - t0
    rss_after_load = _rss_mb()
    analyzer = Analyzer()
    policy = FusionPolicy(model_languages=("en",))
    readers = (("", everyone), ("acl ", one_team))
    ms: dict[str, dict[str, list[float]]] = {
        label: {"dense": [], "bm25": [], "hybrid": []} for label, _ in readers}
    qrng = np.random.default_rng(1)
    for number in range(queries + WARM_UP):
        q = qrng.normal(size=DIM).astype(np.float32)
        q /= np.linalg.norm(q)
        sq = analyzer.query_vector(
            " ".join(f"term{int(x)}" for x in qrng.integers(0, 500, 4)), "en")
        # The same query for both readers, in alternating order (neither gets a warmer
        # cache); the first WARM_UP queries are not measured.
        for label, scope in readers if number % 2 else readers[::-1]:
            t = time.perf_counter()
            d = store.search_dense(q, 50, scope)
            t1 = time.perf_counter()
            s = store.search_sparse(sq, 50, scope)
            t2 = time.perf_counter()
            store.reveal(policy.fuse(d, s, "en", 10), scope)  # the 10 shown: fetched, opened
            t3 = time.perf_counter()
            if number >= WARM_UP:
                ms[label]["dense"].append((t1 - t) * 1000)
                ms[label]["bm25"].append((t2 - t1) * 1000)
                ms[label]["hybrid"].append((t3 - t) * 1000)
    timings = {}
    for label, _ in readers:
        dense_ms, sparse_ms, hybrid_ms = (ms[label][k] for k in ("dense", "bm25", "hybrid"))
        timings.update({
            f"{label}dense p50": statistics.median(dense_ms),
            f"{label}dense p95": _percentile(dense_ms, 0.95),
            f"{label}bm25 p50": statistics.median(sparse_ms),
            f"{label}bm25 p95": _percentile(sparse_ms, 0.95),
            f"{label}hybrid p50": statistics.median(hybrid_ms),
            f"{label}hybrid p95": _percentile(hybrid_ms, 0.95)})
    store.close()
    row = {
        "backend": kind, "chunks": n, "load s": load_s, **timings,
        "acl/unfiltered hybrid p95": timings["acl hybrid p95"] / timings["hybrid p95"],
        "disk MB": _size(path),
        "RSS MB": rss_after_load,
    }
    shutil.rmtree(path, ignore_errors=True)
    return row


def bench_query_embedding(queries: int) -> dict[str, float]:
    from embeddings import SentenceTransformerEncoder, default_model_dir

    encoder = SentenceTransformerEncoder(default_model_dir())
    encoder.encode_query("warm-up")
    times = []
    for i in range(queries):
        t = time.perf_counter()
        encoder.encode_query(f"How many days of paid leave do employees get in year {i}?")
        times.append((time.perf_counter() - t) * 1000)
    return {"query embed p50 ms": statistics.median(times),
            "query embed p95 ms": _percentile(times, 0.95)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backends", nargs="+", default=["embedded", "server-local"])
    parser.add_argument("--one", nargs=2, metavar=("BACKEND", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--local-max", type=int, default=100_000,
                        help="Largest size run on qdrant-client's local mode (it is brute force).")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="greffier-bench-search-"))
    if args.one:  # a child run: one back-end, one size, clean memory accounting
        print(json.dumps(bench_store(args.one[0], int(args.one[1]), args.queries, work)))
        shutil.rmtree(work, ignore_errors=True)
        return
    rows = []
    for n in args.sizes:
        for kind in args.backends:
            if kind == "server-local" and n > args.local_max:
                continue
            child = subprocess.run(
                [sys.executable, __file__, "--one", kind, str(n), "--queries", str(args.queries)],
                capture_output=True, text=True, check=True)
            row = json.loads(child.stdout.strip().splitlines()[-1])
            rows.append(row)
            print_table(f"{kind} at {n} chunks (latencies in ms)", [row])
    print_table("Search latency (ms; store legs + fusion, query embedding excluded)", rows)
    embed = bench_query_embedding(min(args.queries, 100))
    print_table("Query embedding (all-MiniLM-L6-v2, CPU)", [embed])
    write_json("search", {"stores": rows, "query_embedding": embed})
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
