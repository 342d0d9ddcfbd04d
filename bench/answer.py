"""The appliance's overhead over a raw vLLM call, for the same prompt.

Starts the dev model service, ingests a few documents, then for each run: (1) ``ask`` through
the appliance (retrieval, prompt fitting, streaming, citations, audit record, signed receipt)
and (2) the same messages sent straight to vLLM with the ``openai`` client. Greedy sampling
makes both produce the same tokens. Prints medians of time to first token and total time.
Usage: ``python bench/answer.py [--runs 30]``.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

from _common import print_table, write_json

DOCS = {
    "incidents.md": "# Security incidents\n\nReport any suspected incident to the Security "
                    "Operations Centre on extension 4242 and do not switch the machine off.",
    "travel.txt": "Hotel nights are reimbursed up to 150 euros in Paris and 110 elsewhere.",
    "remote.md": "# Remote work\n\nEmployees may work from home up to two days per week.",
}
QUESTION = "How do I report a security incident?"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    from appliance import Appliance, load_settings
    from appliance._llm import ModelService, prepare_dev
    from generation import build_prompt
    from security import KekSource

    work = Path(tempfile.mkdtemp(prefix="greffier-bench-answer-"))
    model = prepare_dev(work / "models" / "smollm2")
    settings = load_settings(None, data_dir=str(work / "data"), llm={
        "model_dir": str(model), "port": _port(), "temperature": 0.0})
    service = ModelService(settings)
    service.start()
    docs = work / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    source = KekSource("passphrase", "bench")
    Appliance.init(settings, source)
    app = Appliance.open(settings, source)
    try:
        app.ingest([docs])
        answerer = app.answerer()
        generator = answerer.generator
        app.ask(QUESTION)  # warm-up (model, tokenizer, caches)
        ours_ttft, ours_total, raw_ttft, raw_total = [], [], [], []
        prompt = None
        for run in range(args.runs):
            # Alternate which path goes first: the first request after an idle spell pays
            # the CPU server's wake-up, and that must not be charged to one side only.
            for side in (("ours", "raw") if run % 2 == 0 else ("raw", "ours")):
                if side == "raw" and prompt is not None:
                    start = time.perf_counter()
                    ttft = None
                    for _token in generator.stream(prompt.messages, answerer.sampling):
                        if ttft is None:
                            ttft = (time.perf_counter() - start) * 1000
                    raw_total.append((time.perf_counter() - start) * 1000)
                    raw_ttft.append(ttft if ttft is not None else float("nan"))
                elif side == "ours":
                    first: list[float] = []
                    start = time.perf_counter()
                    answer, _ = app.ask(QUESTION, on_token=lambda t, first=first: first.append(
                                        time.perf_counter()) if not first else None)
                    ours_total.append((time.perf_counter() - start) * 1000)
                    ours_ttft.append((first[0] - start) * 1000 if first else float("nan"))
                    prompt = build_prompt(
                        QUESTION, answer.passages, answer.lang,
                        count_tokens=answerer.count_tokens,
                        budget=answerer.context_tokens - answerer.sampling.max_tokens)
    finally:
        app.close()
        service.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = statistics.median
    rows = [
        {"metric": "time to first token (ms)", "raw vLLM": med(raw_ttft),
         "Greffier ask": med(ours_ttft), "overhead ms": med(ours_ttft) - med(raw_ttft),
         "ratio": med(ours_ttft) / med(raw_ttft)},
        {"metric": "total (ms)", "raw vLLM": med(raw_total), "Greffier ask": med(ours_total),
         "overhead ms": med(ours_total) - med(raw_total),
         "ratio": med(ours_total) / med(raw_total)},
    ]
    print_table(f"Answer overhead, median of {args.runs} runs (target < 50 ms)", rows)
    write_json("answer", {"runs": args.runs, "rows": rows})


if __name__ == "__main__":
    main()
