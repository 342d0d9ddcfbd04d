"""Ingestion throughput on a generated corpus of mixed documents.

Prints docs/s, pages/s, chunks/s and peak RSS (appliance process and parser worker), and the
ratio of Greffier's embedding throughput to a bare sentence-transformers ``encode`` over the
same texts. Usage: ``python bench/ingest.py [--docs 300]``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from _common import print_table, write_json


def build_mixed(dest: Path, n: int) -> None:
    """n documents: a third text/markdown, the rest DOCX, HTML, and PDF (via LibreOffice)."""
    import docx

    from corpus import _soffice_convert, build_bulk

    build_bulk(dest, n // 3, seed=1)
    word_dir = dest / "docx"
    word_dir.mkdir()
    for i in range(n // 3):
        doc = docx.Document()
        doc.add_heading(f"Procedure {i}", level=1)
        for j in range(4):
            doc.add_heading(f"Step {j}", level=2)
            doc.add_paragraph(f"Procedure {i} step {j}: the operator checks valve {i * 7 + j} "
                              "and records the pressure in the maintenance log. " * 3)
        doc.save(str(word_dir / f"proc-{i:04d}.docx"))
    pdf_src = dest / "pdf-src"
    pdf_src.mkdir()
    for path in sorted(word_dir.glob("*.docx"))[: n - 2 * (n // 3)]:
        shutil.copy(path, pdf_src / path.name.replace("proc", "report"))
    (dest / "pdf").mkdir()
    _soffice_convert({"pdf": sorted(pdf_src.glob("*.docx"))}, dest / "pdf", dest / ".profile")
    shutil.rmtree(pdf_src)
    shutil.rmtree(dest / ".profile", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=300)
    args = parser.parse_args()

    from appliance import Appliance, load_settings
    from security import KekSource

    work = Path(tempfile.mkdtemp(prefix="greffier-bench-"))
    corpus = work / "corpus"
    corpus.mkdir()
    started = time.perf_counter()
    build_mixed(corpus, args.docs)
    print(f"generated {sum(1 for p in corpus.rglob('*') if p.is_file())} documents "
          f"in {time.perf_counter() - started:.0f} s")

    settings = load_settings(None, data_dir=str(work / "data"))
    source = KekSource("passphrase", "bench passphrase")
    Appliance.init(settings, source)
    with Appliance.open(settings, source) as app:
        app.encoder.encode_passages(["warm-up"])  # model load is not ingest throughput
        report = app.ingest([corpus])
        texts = [p.text for p in app.searcher.search("valve pressure log",
                                                     scope=app.operator_scope, k=200).passages]
        # Embedding: Greffier's encoder against a bare sentence-transformers encode.
        from sentence_transformers import SentenceTransformer

        bare = SentenceTransformer(str(app.encoder.folder), device="cpu")
        t0 = time.perf_counter()
        bare.encode(texts, batch_size=32, normalize_embeddings=True)
        bare_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        app.encoder.encode_passages(texts)
        ours_s = time.perf_counter() - t0
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    docs = len([o for o in report.outcomes if o.status == "indexed"])
    rows = [{
        "documents": docs, "failed": report.count("failed"), "pages": report.pages,
        "chunks": report.chunks, "seconds": report.seconds,
        "docs/s": docs / report.seconds, "pages/s": report.pages / report.seconds,
        "chunks/s": report.chunks / report.seconds,
        "peak RSS MB (appliance)": round(rss_self), "peak RSS MB (parser)": round(rss_worker),
    }]
    print_table("Ingestion", rows)
    embed = [{"texts": len(texts), "bare encode s": bare_s, "greffier encode s": ours_s,
              "ratio (bare/greffier)": bare_s / ours_s}]
    print_table("Embedding throughput vs bare sentence-transformers", embed)
    write_json("ingest", {"ingest": rows[0], "embedding": embed[0]})
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
