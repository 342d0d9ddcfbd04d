"""The REST API under load: a real ``greffier serve`` (uvicorn, its own process) on 127.0.0.1.

Setup: a fresh data directory (``greffier init``), the piaf-dev corpus (761 French passages,
one .txt file each) ingested with ``greffier ingest``, then, before the server starts, the
same searches in one process without HTTP: the bare ``HybridSearcher``, ``Appliance.search``
(+ audit entry and signed receipt), the search use case (+ the receipt row in the database)
and token authentication (+ its audit entry), so that the cost of each layer is known. Then
``greffier serve`` holds the data directory; readers and their API tokens (scopes read+ask)
are created over its Unix socket (the first with the ``greffier users``/``tokens`` CLI).

1. ``--users`` simulated people, each with their own account and token, POST /v1/search with
   a piaf-dev question, then think 2 s ± 50 % (uniform), for ``--duration`` s.
2. Saturation: N clients with no think time, ``--saturation-duration`` s each; searches/s
   against the bare ``HybridSearcher`` loop (same corpus, same questions).
3. ``/healthz`` every 100 ms from a separate prober process during 1 and 2 (and 4).
4. Unless ``--skip-llm``: the dev model (``greffier models prepare-dev`` + ``greffier llm
   serve``, vLLM on the CPU), ``--asks`` concurrent streaming asks (SSE), ``--ask-rounds``
   each: time to first token and total time; one search a second meanwhile.

The load driver (this process, httpx async) and the prober share the machine's cores with
the server: their CPU use is recorded beside the server's. The server's rate limits are
raised for the run (every simulated user comes from 127.0.0.1: the per-address limit of 600
requests a minute would answer 429 by design). Writes ``bench/results/api_load.json``.

Usage: ``python bench/api_load.py [--users 50] [--duration 60] [--skip-llm]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import machine, print_table, write_json

ROOT = Path(__file__).resolve().parents[1]
PIAF = ROOT.parent / "shared" / "data" / "piaf-dev"
GREFFIER = [sys.executable, "-m", "appliance"]
PASSPHRASE = "greffier api load benchmark passphrase"
TICK = os.sysconf("SC_CLK_TCK")
# The dev model's context for the run: the appliance's default. (With a per-request seed,
# vLLM on the CPU died on prompts over 2048 tokens, whose prefill it chunks: "RuntimeError:
# CPU Generator does not use offset". Greffier no longer sends a seed.)
LLM_CONTEXT = 4096
READERS = "staff"  # the group that may read the corpus; every simulated user is in it


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the prober: its own process, so the driver's event loop does not colour its numbers ---
def probe(url: str, every: float = 0.1) -> None:
    """GET /healthz every ``every`` s until SIGTERM; prints [(ms, status), …]."""
    import httpx

    out: list[tuple[float, int]] = []
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop:
            start = time.monotonic()
            try:
                status = client.get("/healthz").status_code
            except httpx.HTTPError:
                status = 0
            out.append(((time.monotonic() - start) * 1000, status))
            time.sleep(max(0.0, every - (time.monotonic() - start)))
    print(json.dumps(out))


class Prober:
    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--probe", url],
                                     stdout=subprocess.PIPE, text=True)

    def result(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        samples = json.loads(out)
        ms = [m for m, s in samples if s == 200]
        return {"health n": len(samples), "health errors": len(samples) - len(ms),
                "health p50": statistics.median(ms) if ms else float("nan"),
                "health p95": pct(ms, 0.95), "health max": max(ms, default=float("nan"))}


# -- CPU accounting -------------------------------------------------------------------------
def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _tree_cpu_s(root: int) -> float:
    """CPU of a process and all its descendants (``greffier llm serve``, vLLM, its engine
    and workers, which start sessions of their own)."""
    procs: dict[int, tuple[int, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[int(stat.parent.name)] = (int(fields[1]),
                                        (int(fields[11]) + int(fields[12])) / TICK)
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (ppid, _) in procs.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(procs[pid][1] for pid in tree if pid in procs)


def _busy_s() -> float:
    """CPU time spent by the whole machine (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICK  # minus idle and iowait


class CpuMeter:
    """CPU over a phase, in % of one core: the server, this driver, the prober, the model
    service, and everything else on the machine (other work sharing the cores)."""

    def __init__(self, server_pid: int, prober_pid: int, model_pgid: int | None) -> None:
        self.pids = (server_pid, prober_pid)
        self.model = model_pgid
        self.t0 = time.monotonic()
        self.start = self._sample()

    def _sample(self) -> tuple[float, ...]:
        return (_cpu_s(self.pids[0]), sum(os.times()[:2]), _cpu_s(self.pids[1]),
                _tree_cpu_s(self.model) if self.model else 0.0, _busy_s())

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        server, driver, prober, model, busy = (
            100 * (b - a) / wall for a, b in zip(self.start, self._sample(), strict=True))
        out = {"server CPU %": server, "driver CPU %": driver + prober}
        if self.model:
            out["model CPU %"] = model
        out["others CPU %"] = max(0.0, busy - server - driver - prober - model)
        return out


# -- server-side metrics (the /metrics histograms' sums and counts) -------------------------
_LINE = re.compile(r'^(\w+)_(sum|count)\{([^}]*)\} (\S+)$')


def scrape(clients: list[Any]) -> dict[tuple[str, str, str], float]:
    """Summed over the public listener and the Unix socket's: both apps share the runtime,
    and its stage timings land in whichever app was built last (the socket's, today)."""
    out: dict[tuple[str, str, str], float] = {}
    for client in clients:
        for line in client.get("/metrics").text.splitlines():
            if m := _LINE.match(line):
                key = (m.group(1), m.group(3), m.group(2))
                out[key] = out.get(key, 0.0) + float(m.group(4))
    return out


def server_means(before: dict[Any, float], after: dict[Any, float]) -> dict[str, float]:
    """Mean server-side ms over a phase: the whole request (middleware) and the search."""
    wanted = {"server request ms": ("greffier_http_request_duration_seconds",
                                    'method="POST",route="/v1/search",status="200"'),
              "server search ms": ("greffier_stage_seconds", 'stage="search"')}
    out = {}
    for label, (name, labels) in wanted.items():
        keys = [k for k in after if k[0] == name and k[2] == "count"
                and all(part in k[1] for part in labels.split(","))]
        count = sum(after[k] - before.get(k, 0.0) for k in keys)
        total = sum(after[(k[0], k[1], "sum")] - before.get((k[0], k[1], "sum"), 0.0)
                    for k in keys)
        out[label] = 1000 * total / count if count else float("nan")
    return out


# -- setup ----------------------------------------------------------------------------------
def env_for(data: Path, secret: Path, llm_port: int, context: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREFFIER_")}
    env.update({"GREFFIER_DATA_DIR": str(data), "GREFFIER_PASSPHRASE_FILE": str(secret),
                "GREFFIER_API__PLAIN_HTTP": "true", "GREFFIER_API__RATE_PER_IP": "10000000",
                "GREFFIER_API__RATE_PER_USER": "10000000", "GREFFIER_LLM__PORT": str(llm_port),
                "GREFFIER_LLM__MAX_MODEL_LEN": str(context)})
    return env


def run(args: list[str], env: dict[str, str], **kwargs: Any) -> str:
    done = subprocess.run([*GREFFIER, *args], env=env, capture_output=True, text=True,
                          timeout=3600, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"greffier {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def write_corpus(dest: Path, limit: int | None) -> int:
    dest.mkdir(parents=True)
    lines = (PIAF / "corpus.jsonl").read_text().splitlines()[:limit]
    for line in lines:
        doc = json.loads(line)
        (dest / f"{doc['_id']}.txt").write_text(f"{doc.get('title', '')}\n\n{doc['text']}\n")
    return len(lines)


def questions() -> list[str]:
    rows = [json.loads(line)["text"] for line in
            (PIAF / "queries.jsonl").read_text().splitlines() if line.strip()]
    random.Random(7).shuffle(rows)
    return rows


CPU_MS: list[float] = []  # process CPU per call of the last ``timed`` run


def timed(fn: Callable[[str], Any], queries: list[str]) -> list[float]:
    out = []
    cpu = sum(os.times()[:2])
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t) * 1000)
    CPU_MS[:] = [1000 * (sum(os.times()[:2]) - cpu) / max(1, len(queries))]
    return out


def in_process(data: Path, queries: list[str], n: int) -> dict[str, Any]:
    """Each layer of a search, in one process, without HTTP (before the server holds the
    data directory): the bare HybridSearcher is the saturation reference."""
    from appliance import load_settings
    from appliance.service import Runtime, operator
    from appliance.service import _answers as use
    from appliance.service import _groups as groups
    from appliance.service._models import SearchIn
    from security import KekSource

    os.environ.pop("GREFFIER_CONFIG", None)
    settings = load_settings(None, data_dir=str(data))
    rt = Runtime(settings)
    rt.unseal(KekSource("passphrase", PASSPHRASE), user="bench")
    rows: list[dict[str, Any]] = []
    try:
        app = rt.appliance()
        k = settings.search.k
        timed(lambda q: app.searcher.search(q,
                                            scope=app.operator_scope, k=k), queries[:20])  # warm-up
        sample = queries[:n]
        t0 = time.perf_counter()
        bare = timed(lambda q: app.searcher.search(q, scope=app.operator_scope, k=k), sample)
        bare_rate = len(sample) / (time.perf_counter() - t0)

        def row(layer: str, ms: list[float]) -> None:
            rows.append({"layer": layer, "p50 ms": statistics.median(ms),
                         "p95 ms": pct(ms, 0.95), "mean ms": statistics.fmean(ms),
                         "CPU ms": CPU_MS[0], "per s (serial)": 1000 / statistics.fmean(ms)})

        row("HybridSearcher.search (bare)", bare)

        def appliance_search(q: str) -> None:
            with rt.using() as a:
                a.search(q, user="bench", receipt_id=uuid.uuid4().hex)

        row("+ audit entry, signed receipt (Appliance.search)", timed(appliance_search, sample))
        root = operator("root")
        password = uuid.uuid4().hex
        name = f"bench-profile-{uuid.uuid4().hex[:6]}"
        rt.identity.add_user(root, name, password, {"reader"})
        groups.add_member(rt, root, READERS, name)
        who = rt.identity.login(name, password, None, "bench").principal
        token, _ = rt.identity.create_token(who, "bench", {"read", "ask"}, 30)
        who = rt.identity.authenticate_token(token)
        row("+ receipt row in the database (search use case)",
            timed(lambda q: use.search(rt, who, SearchIn(query=q)), sample))
        row("+ token authentication (what a request runs)",
            timed(lambda q: use.search(rt, rt.identity.authenticate_token(token),
                                       SearchIn(query=q)), sample))
        row("token authentication alone (+ its audit entry)",
            timed(lambda q: rt.identity.authenticate_token(token), sample))
        row("one audit append alone (fsync)", timed(lambda q: _append(rt, q), sample))
        row("fsync of a 200-byte append on this disk", timed(lambda q: _fsync(data), sample))
        (data / "bench-fsync.tmp").unlink(missing_ok=True)
    finally:
        rt.close()
    return {"rows": rows, "bare_searches_per_s": bare_rate}


def _fsync(data: Path) -> None:
    with (data / "bench-fsync.tmp").open("ab") as handle:
        handle.write(b"x" * 199 + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def _append(rt: Any, q: str) -> None:
    with rt.using() as app:
        app.audit.append("bench.probe", "bench", {"n": len(q)})


class Server:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        command = GREFFIER
        self.log = log
        with log.open("w") as err:
            self.proc = subprocess.Popen([*command, "serve", "--port", "0"], env=env,
                                         stdout=subprocess.PIPE, stderr=err, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            self.proc.kill()
            raise SystemExit(f"greffier serve did not start: {line}{log.read_text()}")
        self.url = line.split()[1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()


def make_readers(data: Path, env: dict[str, str], n: int) -> list[str]:
    """Reader accounts in the corpus's group, one API token each (read+ask), made over the
    server's socket: the
    first with the CLI (``greffier users add`` / ``tokens create``), the rest with the same
    calls over the socket directly (a CLI start per account would take minutes)."""
    import httpx

    tokens = []
    secret = data.parent / "reader.password"
    secret.write_text(uuid.uuid4().hex)
    run_id = uuid.uuid4().hex[:6]  # a reused data directory already has earlier readers
    run(["users", "add", f"reader-{run_id}-0", "--role", "reader", "--password-file",
         str(secret)], env)
    out = run(["tokens", "create", "--user", f"reader-{run_id}-0", "--name", "load",
               "--scope", "read",
               "--scope", "ask", "--days", "7"], env)
    tokens.append(out.strip().splitlines()[0])
    run(["groups", "members", "add", READERS, f"reader-{run_id}-0"], env)
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(data / "greffier.sock")),
                      base_url="http://greffier.local", timeout=120,
                      headers={"X-Greffier-Operator": "bench"}) as sock:
        for i in range(1, n):
            name = f"reader-{run_id}-{i}"
            sock.post("/v1/users", json={"name": name, "password": uuid.uuid4().hex,
                                         "roles": ["reader"]}).raise_for_status()
            sock.put(f"/v1/groups/{READERS}/members/{name}").raise_for_status()
            made = sock.post("/v1/tokens", json={"name": "load", "scopes": ["read", "ask"],
                                                 "expires_in_days": 7, "user": name})
            made.raise_for_status()
            tokens.append(made.json()["token"])
    assert all(t.startswith("gfr_") for t in tokens)
    return tokens


# -- load -----------------------------------------------------------------------------------
class Record:
    def __init__(self) -> None:
        self.ms: list[float] = []
        self.errors: dict[str, int] = {}

    def add(self, ms: float, status: int | str) -> None:
        if status == 200:
            self.ms.append(ms)
        else:
            self.errors[str(status)] = self.errors.get(str(status), 0) + 1

    def summary(self, seconds: float) -> dict[str, Any]:
        n = len(self.ms) + sum(self.errors.values())
        return {"requests": n, "errors": sum(self.errors.values()),
                "error rate %": 100 * sum(self.errors.values()) / n if n else 0.0,
                "per s": n / seconds, "p50 ms": pct(self.ms, 0.5), "p95 ms": pct(self.ms, 0.95),
                "p99 ms": pct(self.ms, 0.99), "max ms": max(self.ms, default=float("nan")),
                "error kinds": dict(self.errors)}


async def searcher(url: str, token: str, queries: list[str], rec: Record, until: float,
                   think: float, rng: random.Random) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        if think:
            await asyncio.sleep(rng.uniform(0, think))  # people do not start in step
        while time.monotonic() < until:
            q = rng.choice(queries)
            t = time.perf_counter()
            try:
                r = await client.post("/v1/search", json={"query": q})
                status: int | str = r.status_code
                if status == 200 and not r.json().get("passages"):
                    status = "empty"
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            rec.add((time.perf_counter() - t) * 1000, status)
            if think:
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))


async def load(url: str, tokens: list[str], queries: list[str], clients: int, seconds: float,
               think: float) -> tuple[Record, float]:
    rec = Record()
    until = time.monotonic() + seconds
    start = time.monotonic()
    await asyncio.gather(*(searcher(url, tokens[i % len(tokens)], queries, rec, until, think,
                                    random.Random(i)) for i in range(clients)))
    return rec, time.monotonic() - start


def phase(server: Server, ctl: Any, work: Callable[[], Any], model_pgid: int | None = None
          ) -> tuple[Any, dict[str, Any]]:
    """Run ``work`` with the health prober, the CPU meter and the server's metrics."""
    prober = Prober(server.url)
    time.sleep(0.5)  # the prober's interpreter starts
    before = scrape(ctl)
    cpu = CpuMeter(server.proc.pid, prober.proc.pid, model_pgid)
    result = work()
    extra = {**cpu.stop(), **server_means(before, scrape(ctl)), **prober.result()}
    return result, extra


async def ask_one(url: str, token: str, question: str) -> dict[str, Any]:
    import httpx

    out: dict[str, Any] = {"status": None, "ttft": None, "total": None, "tokens": 0}
    t = time.perf_counter()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=600,
                                     headers={"Authorization": f"Bearer {token}"}) as client, \
                client.stream("POST", "/v1/ask",
                              json={"question": question, "stream": True}) as r:
            out["status"] = r.status_code
            event = ""
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    if event == "token":
                        out["tokens"] += 1
                        if out["ttft"] is None:
                            out["ttft"] = (time.perf_counter() - t) * 1000
                    elif event == "answer":
                        body = json.loads(line[6:])
                        out["refused"], out["degraded"] = body["refused"], body["degraded"]
                    elif event == "error":
                        out["status"] = f"event {json.loads(line[6:]).get('code')}"
    except httpx.HTTPError as exc:
        out["status"] = type(exc).__name__
    out["total"] = (time.perf_counter() - t) * 1000
    return out


async def asks(url: str, tokens: list[str], queries: list[str], clients: int, rounds: int
               ) -> tuple[list[dict[str, Any]], Record, float]:
    """``clients`` concurrent streaming asks, ``rounds`` each; one search a second meanwhile
    (an ask holds the runtime while the model writes: do searches wait?)."""
    side = Record()
    done = asyncio.Event()
    start = time.monotonic()

    async def user(i: int) -> list[dict[str, Any]]:
        return [await ask_one(url, tokens[i], queries[(i * rounds + r) % len(queries)])
                for r in range(rounds)]

    async def side_search() -> None:
        import httpx

        async with httpx.AsyncClient(base_url=url, timeout=600, headers={
                "Authorization": f"Bearer {tokens[-1]}"}) as client:
            while not done.is_set():
                t = time.perf_counter()
                try:
                    r = await client.post("/v1/search", json={"query": random.choice(queries)})
                    side.add((time.perf_counter() - t) * 1000, r.status_code)
                except httpx.HTTPError as exc:
                    side.add(0, type(exc).__name__)
                await asyncio.sleep(1.0)

    task = asyncio.create_task(side_search())
    results = await asyncio.gather(*(user(i) for i in range(clients)))
    elapsed = time.monotonic() - start
    done.set()
    await task
    return [r for rs in results for r in rs], side, elapsed


def start_llm(env: dict[str, str], data: Path) -> tuple[subprocess.Popen[str] | None, str]:
    """``greffier models prepare-dev`` and ``greffier llm serve``; (process, why not)."""
    if not (ROOT / ".venv-llm" / "bin" / "python").exists():
        return None, "no .venv-llm (run `make venv-llm`)"
    try:
        run(["models", "prepare-dev"], env)
    except SystemExit as exc:
        return None, f"prepare-dev failed: {str(exc)[-400:]}"
    log = (data.parent / "llm-serve.log").open("w")
    proc = subprocess.Popen([*GREFFIER, "llm", "serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 600:
        text = (data.parent / "llm-serve.log").read_text()
        if "ready:" in text:
            print(f"  vLLM ready after {time.monotonic() - t0:.0f} s", flush=True)
            return proc, ""
        if proc.poll() is not None:
            return None, f"greffier llm serve exited {proc.returncode}: {text[-600:]}"
        time.sleep(1)
    stop_llm(proc)
    return None, "vLLM was not ready after 600 s"


def stop_llm(proc: subprocess.Popen[str] | None) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def model_state(data: Path, proc: subprocess.Popen[str], since: int) -> str:
    """Whether vLLM survived the asks; if not, the error its log gives (from ``since``)."""
    log = data / "llm" / "vllm.log"
    text = log.read_bytes()[since:].decode(errors="replace") if log.exists() else ""
    if "EngineCore encountered a fatal error" in text:
        errors = re.findall(r"^.*?\] ((?:\w+\.)*\w+Error: .*)$", text, re.MULTILINE)
        return f"engine died: {errors[0] if errors else 'see vllm.log'}"
    return "running" if proc.poll() is None else f"exited {proc.returncode}"


def ask_summary(results: list[dict[str, Any]], elapsed: float) -> dict[str, Any]:
    ok = [r for r in results if r["status"] == 200]
    streamed = [r for r in ok if r["ttft"] is not None]
    ttft = [r["ttft"] for r in streamed]
    total = [r["total"] for r in ok]
    return {"asks": len(results), "errors": len(results) - len(ok),
            "refused": sum(1 for r in ok if r.get("refused")),
            "degraded": sum(1 for r in ok if r.get("degraded")),
            "streamed": len(streamed), "ttft p50 ms": pct(ttft, 0.5),
            "ttft p95 ms": pct(ttft, 0.95), "total p50 ms": pct(total, 0.5),
            "total p95 ms": pct(total, 0.95), "wall s": elapsed,
            "tokens/answer": statistics.fmean([r["tokens"] for r in streamed]) if streamed
            else 0.0, "error kinds": sorted({str(r["status"]) for r in results
                                             if r["status"] != 200})}


def wait_quiet(limit_s: float, busy_pct: float = 15.0) -> None:
    """Wait until the machine's cores are idle (< ``busy_pct`` % of one core over 20 s)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = _busy_s()
        time.sleep(20)
        busy = 100 * (_busy_s() - before) / 20
        if busy < busy_pct:
            return
        print(f"  the machine is busy ({busy:.0f} % of a core): waiting", flush=True)
    print("  still busy: measuring anyway (see the others CPU % column)", flush=True)


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    users, sat = result["users"], result["saturation"]
    best = max(sat["rows"], key=lambda r: r["per s"])
    health = [("users", users["health p95"])] + [
        (f"saturation {r['clients']}", r["health p95"]) for r in sat["rows"]]
    if "summary" in result.get("asks", {}):
        health.append(("asks", result["asks"]["summary"]["health p95"]))
    worst = max(health, key=lambda h: h[1])
    rows = [("search p95 at {} users < 150 ms".format(users["users"]),
             f"{users['p95 ms']:.0f} ms", users["p95 ms"] < 150),
            ("0 errors at {} users".format(users["users"]),
             f"{users['errors']} of {users['requests']}", users["errors"] == 0),
            ("health p95 < 50 ms (worst phase)", f"{worst[1]:.1f} ms ({worst[0]})",
             worst[1] < 50),
            ("saturation ≥ 80 % of the bare HybridSearcher",
             f"{best['% of bare']:.0f} % ({best['per s']:.1f} vs "
             f"{sat['bare_searches_per_s']:.1f} /s)", best["% of bare"] >= 80)]
    return [{"goal": g, "measured": m, "met": "yes" if ok else "NO"} for g, m, ok in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--think", type=float, default=2.0)
    parser.add_argument("--saturation", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--saturation-duration", type=float, default=20.0)
    parser.add_argument("--asks", type=int, default=10)
    parser.add_argument("--ask-rounds", type=int, default=1)
    parser.add_argument("--docs", type=int, default=None, help="Corpus passages (all: 761).")
    parser.add_argument("--profile-queries", type=int, default=200)
    parser.add_argument("--skip-llm", action="store_true")
    parser.add_argument("--llm-context", type=int, default=LLM_CONTEXT,
                        help="llm.max_model_len for the run (see LLM_CONTEXT).")
    parser.add_argument("--keep", action="store_true", help="Keep the work directory.")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="Reuse a work directory kept by --keep (no init, no ingest).")
    parser.add_argument("--out", default=None,
                        help="Results name (default api_load).")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="MINUTES",
                        help="First wait (up to MINUTES) until the rest of the machine is idle.")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe)
        return
    import httpx

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server and vLLM
    if args.wait_quiet:
        wait_quiet(args.wait_quiet * 60)
    m = machine()
    print(f"{m['cpus']} cores ({m['cpu']}); the load driver and the health prober run on "
          "the same cores as the server (their CPU use is shown beside the server's)")
    reuse = args.workdir is not None and (args.workdir / "data" / "keys").is_dir()
    work = args.workdir if reuse else Path(tempfile.mkdtemp(prefix="greffier-bench-api-"))
    data = work / "data"
    secret = work / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    env = env_for(data, secret, _port(), args.llm_context)
    queries = questions()
    server: Server | None = None
    llm: subprocess.Popen[str] | None = None
    result: dict[str, Any] = {"settings": {
        "users": args.users, "duration_s": args.duration, "think_s": args.think,
        "saturation_clients": args.saturation, "saturation_s": args.saturation_duration,
        "asks": args.asks, "ask_rounds": args.ask_rounds, "llm_context": args.llm_context,
        "server": "greffier serve",
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "note": "driver, prober and server share the machine's cores; server rate limits "
                "raised for the run (all clients come from 127.0.0.1)"}}
    try:
        if reuse:
            docs, ingest_s = len(list((work / "docs").glob("*.txt"))), float("nan")
        else:
            docs = write_corpus(work / "docs", args.docs)
            run(["init"], env)
            run(["groups", "add", READERS], env)
            t = time.monotonic()
            run(["ingest", "--group", READERS, str(work / "docs")], env)
            ingest_s = round(time.monotonic() - t, 1)
        result["corpus"] = {"documents": docs, "ingest_s": ingest_s}
        print(f"ingested {docs} piaf-dev passages in {result['corpus']['ingest_s']} s",
              flush=True)
        profile = in_process(data, queries, args.profile_queries)
        result["in_process"] = profile
        print_table("One search, layer by layer, in one process (no HTTP)", profile["rows"])
        bare = profile["bare_searches_per_s"]
        server = Server(env, work / "server.log")
        print(f"server: {server.url} (pid {server.proc.pid})", flush=True)
        tokens = make_readers(data, env, max(args.users, max(args.saturation), args.asks + 1))
        ctl = [httpx.Client(base_url=server.url, timeout=60), httpx.Client(
            transport=httpx.HTTPTransport(uds=str(data / "greffier.sock")),
            base_url="http://greffier.local", timeout=60)]
        asyncio.run(load(server.url, tokens, queries, 4, 5, 0))  # warm-up

        rec, extra = phase(server, ctl, lambda: asyncio.run(
            load(server.url, tokens, queries, args.users, args.duration, args.think)))
        users_row = {"users": args.users, **rec[0].summary(rec[1]), **extra}
        result["users"] = users_row
        print_table(f"{args.users} users, one search every {args.think} s ± 50 % "
                    f"({args.duration:.0f} s)", [users_row])

        sat_rows = []
        for n in args.saturation:
            rec, extra = phase(server, ctl, lambda n=n: asyncio.run(
                load(server.url, tokens, queries, n, args.saturation_duration, 0)))
            summary = rec[0].summary(rec[1])
            sat_rows.append({"clients": n, **summary,
                             "% of bare": 100 * summary["per s"] / bare, **extra})
        result["saturation"] = {"bare_searches_per_s": bare, "rows": sat_rows}
        print_table(f"Saturation (no think time; bare HybridSearcher: {bare:.1f} searches/s "
                    "in one process)", sat_rows)

        if args.skip_llm:
            result["asks"] = {"skipped": "--skip-llm"}
        else:
            log = data / "llm" / "vllm.log"
            log_start = log.stat().st_size if log.exists() else 0
            llm, why = start_llm(env, data)
            if llm is None:
                result["asks"] = {"skipped": why}
                print(f"\nstreaming asks not measured: {why}")
            else:
                asyncio.run(ask_one(server.url, tokens[0], queries[0]))  # builds the answerer
                (results, side, elapsed), extra = phase(server, ctl, lambda: asyncio.run(
                    asks(server.url, tokens, queries[100:], args.asks, args.ask_rounds)),
                    model_pgid=llm.pid)
                extra = {k: v for k, v in extra.items()
                         if k not in ("server request ms", "server search ms")}
                row = {"clients": args.asks, **ask_summary(results, elapsed), **extra}
                side_row = side.summary(elapsed)
                result["asks"] = {"summary": row, "search_meanwhile": side_row,
                                  "model_service": model_state(data, llm, log_start),
                                  "samples": results}
                print_table(f"{args.asks} concurrent streaming asks, {args.ask_rounds} each",
                            [row])
                print_table("One search a second during the asks", [side_row])
                print(f"model service after the asks: {result['asks']['model_service']}")
                if row["errors"]:
                    tail = server.log.read_text(errors="replace")[-3000:]
                    result["asks"]["server_log_tail"] = tail
                    print(f"server log (end):\n{tail}")
        result["goals"] = goals(result)
        print_table("Goals", result["goals"])
        for c in ctl:
            c.close()
    finally:
        stop_llm(llm)
        if server is not None:
            server.stop()
        if not args.keep and not reuse:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    write_json(args.out or "api_load", result)


if __name__ == "__main__":
    main()
