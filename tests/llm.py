"""The real vLLM dev model, started once per test session and shared by every test module
that imports the ``llm`` fixture (``from llm import llm``). Skips without ``.venv-llm``.

Each appliance that talks to it gets the service's settings (:meth:`Llm.settings`) and its
API key (:meth:`Llm.attach`, which writes the key where the appliance reads it). Also here
for end-to-end tests over it: :class:`Recording` (what the appliance really sends to the
model) and :func:`uvicorn_on_loopback` (the API served by a real uvicorn)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from appliance._llm import ModelService, api_key, prepare_dev
from generation import Generator, Sampling

from conftest import ROOT, make_settings

LLM_PYTHON = ROOT / ".venv-llm" / "bin" / "python"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Llm:
    """A running vLLM server: where it is, its model folder, its API key."""

    service: ModelService
    model_dir: Path
    port: int
    key: str

    @property
    def url(self) -> str:
        return self.service.url

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The ``llm`` settings of an appliance using this server."""
        return {"model_dir": str(self.model_dir), "port": self.port, **overrides}

    def attach(self, data_dir: Path) -> None:
        """Give the appliance at ``data_dir`` this server's API key."""
        path = data_dir / "llm" / "api_key"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(self.key)
        path.chmod(0o600)

    def _get(self, path: str) -> bytes:
        request = urllib.request.Request(f"{self.url}{path}",
                                         headers={"Authorization": f"Bearer {self.key}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body: bytes = response.read()
            return body

    def requests_served(self, *, after: float | None = None, wait_s: float = 5.0) -> float:
        """vLLM's own count of completed requests (its /metrics); with ``after``, waits up to
        ``wait_s`` for the count to move past it (vLLM counts a request once it is done)."""
        deadline = time.monotonic() + wait_s
        while True:
            text = self._get("/metrics").decode()
            count = sum(float(m) for m in re.findall(
                r"^vllm:request_success_total\{[^}]*\} (\S+)", text, re.MULTILINE))
            if after is None or count > after or time.monotonic() > deadline:
                return count
            time.sleep(0.2)

    def roles(self, messages: list[dict[str, str]]) -> list[str]:
        """The role of every turn vLLM renders for these messages through the model's chat
        template (what the model really sees)."""
        body = json.dumps({"model": self.service.settings.llm.model_name,
                           "messages": messages, "add_generation_prompt": True,
                           "return_token_strs": True}).encode()
        request = urllib.request.Request(f"{self.url}/tokenize", data=body, headers={
            "Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            tokens = list(json.loads(response.read())["token_strs"])
        return turn_roles(tokens)


def turn_roles(tokens: list[str]) -> list[str]:
    """The role of every turn: what follows each <|im_start|> special token, up to newline."""
    roles = []
    for i, token in enumerate(tokens):
        if token == "<|im_start|>":
            role = ""
            for piece in tokens[i + 1:i + 4]:
                if "Ċ" in piece or "\n" in piece:
                    break
                role += piece
            roles.append(role)
    return roles


class Recording:
    """The real generator, keeping the messages it actually sends to the model service."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.model = inner.model
        self.sent: list[list[dict[str, str]]] = []

    def stream(self, messages: list[dict[str, str]], sampling: Sampling) -> Iterator[str]:
        self.sent.append(messages)
        yield from self.inner.stream(messages, sampling)


@contextmanager
def uvicorn_on_loopback(app: Any) -> Iterator[str]:
    """The app served by a real uvicorn in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn")
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Llm]:
    if not LLM_PYTHON.exists():
        pytest.skip("no .venv-llm: run `make venv-llm` (make test does)")
    root = tmp_path_factory.mktemp("llm")
    model = prepare_dev(root / "models" / "smollm2-135m-instruct")
    port = free_port()
    settings = make_settings(root / "data", llm={"model_dir": str(model), "port": port})
    service = ModelService(settings)
    service.start()
    try:
        yield Llm(service, model, port, api_key(settings))
    finally:
        service.stop()
