"""Typed settings: ``greffier.toml`` overlaid by ``GREFFIER_*`` environment variables.

Nested fields use ``__`` in environment names: ``GREFFIER_STORE__BACKEND=server``.
Unsafe combinations are refused at start, with the fix in the message.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from security import ConfigError

from ._directory_settings import LdapSettings
from ._oidc_settings import OidcSettings

CONFIG_ENV = "GREFFIER_CONFIG"
DEFAULT_CONFIG_PATHS = (Path("greffier.toml"), Path("/etc/greffier/greffier.toml"))


class IngestSettings(BaseModel):
    max_file_mb: int = Field(200, ge=1, description="Largest binary document accepted (MB).")
    max_text_mb: int = Field(10, ge=1, description="Largest text-like file accepted (MB).")
    max_unpacked_mb: int = Field(512, ge=1, description="Zip-based documents: unpacked cap.")
    max_document_chars: int = Field(5_000_000, ge=1000, description="Text cap per document.")
    parse_timeout_s: float = Field(180.0, gt=0, description="Time limit to parse one file.")
    parse_memory_mb: int = Field(4096, ge=256, description="Memory cap of a parse worker.")
    ocr_languages: list[str] = Field(["fra", "eng"], description="Tesseract languages.")
    chunk_max_chars: int = Field(2000, ge=200, description="Largest chunk, in characters.")
    sandbox_user: str = Field(
        "nobody", min_length=1, description="Unprivileged user the parser runs as under root.")


class EmbeddingSettings(BaseModel):
    model_dir: Path | None = Field(None, description="Model folder; default: bundled dev model.")
    model_name: str = Field("all-MiniLM-L6-v2", description="Name recorded with each chunk.")
    model_languages: list[str] = Field(["en"], description="Languages the model covers.")
    query_prefix: str = Field("", description="Prepended to queries (E5: 'query: ').")
    passage_prefix: str = Field("", description="Prepended to passages (E5: 'passage: ').")
    batch_size: int = Field(32, ge=1, description="Passages per encoder batch.")


class StoreSettings(BaseModel):
    backend: Literal["embedded", "server"] = Field("embedded", description="Qdrant back-end.")
    url: str | None = Field(None, description="Qdrant server URL (backend = server).")
    api_key: SecretStr | None = Field(None, description="Qdrant API key (backend = server).")
    collection: str = Field("greffier", description="Collection name (backend = server).")
    hnsw_ef: int = Field(128, ge=8, description="HNSW search breadth.")


class SearchSettings(BaseModel):
    k: int = Field(10, ge=1, le=200, description="Passages returned by default.")
    candidates: int = Field(50, ge=1, le=1000, description="Candidates per leg before fusion.")
    fusion: Literal["convex", "rrf"] = Field(
        "convex", description="convex: weighted normalised scores; rrf: reciprocal ranks.")
    dense_weight: float = Field(
        0.45, ge=0, le=1, description="Dense share of the fused score (query in model languages).")
    foreign_dense_weight: float = Field(
        0.15, ge=0, le=1, description="Dense share for queries outside the model's languages.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant (fusion = rrf).")
    reranker_dir: Path | None = Field(None, description="CrossEncoder folder (optional).")
    rerank_top: int = Field(30, ge=1, le=200, description="Candidates the reranker scores.")
    rerank_budget_ms: float = Field(1500.0, gt=0, description="Time budget for reranking.")


class LlmSettings(BaseModel):
    model_name: str = Field("smollm2-135m-instruct", description="Served model name.")
    model_dir: Path | None = Field(
        None, description="Model folder (safetensors + SHA256SUMS); default: the dev model.")
    python: Path | None = Field(None, description="Python of the vLLM venv (.venv-llm).")
    port: int = Field(8008, ge=1024, le=65535, description="Loopback port of the service.")
    dtype: Literal["bfloat16", "float16", "auto"] = Field("bfloat16", description="Weights.")
    max_model_len: int = Field(4096, ge=512, description="Context window, in tokens.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per model (production).")
    kv_cache_gb: int = Field(1, ge=1, description="CPU KV cache (VLLM_CPU_KVCACHE_SPACE).")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout before degrading.")
    temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature.")
    top_p: float = Field(0.9, gt=0, le=1, description="Nucleus sampling.")
    max_tokens: int = Field(384, ge=16, description="Longest answer, in tokens.")
    max_sources: int = Field(6, ge=1, le=20, description="Passages given to the model.")
    min_dense: float = Field(0.35, description="Refuse below this best cosine ...")
    min_sparse: float = Field(3.0, description="... and below this best BM25 score.")


class SecuritySettings(BaseModel):
    allowed_hosts: list[str] = Field(
        [], description="Hosts the appliance may connect to besides loopback.")
    kek: Literal["passphrase", "pkcs11"] = Field(
        "passphrase", description="What protects the key-encryption key.")
    pkcs11_module: str = Field("", description="PKCS#11 library (kek = pkcs11).")
    pkcs11_token_label: str = Field("greffier", description="Token label (kek = pkcs11).")
    pkcs11_key_label: str = Field("greffier-kek", description="KEK label in the token.")
    unseal_free_attempts: int = Field(
        3, ge=1, le=20, description="Wrong secrets allowed before unseal attempts must wait.")
    unseal_backoff_s: float = Field(
        2.0, gt=0, le=3600, description="First wait after them; doubles at each failure.")
    unseal_backoff_cap_s: float = Field(
        900.0, gt=0, description="Longest wait between unseal attempts.")


class AuditSettings(BaseModel):
    head_every: int = Field(
        64, ge=1, le=100_000, description="Entries between two signed tree heads at most.")
    head_sinks: list[str] = Field(
        [], description='Copies of every signed head: "syslog", "file:/other/mount/heads".')


class DatabaseSettings(BaseModel):
    url: SecretStr | None = Field(
        None, description="Metadata database URL (postgresql+psycopg://…); default: SQLite "
        "in the data directory.")


class IdentitySettings(BaseModel):
    password_min_length: int = Field(12, ge=8, le=128, description="Shortest password.")
    lockout_after: int = Field(5, ge=1, le=100, description="Failed logins before a lockout.")
    lockout_minutes: float = Field(
        15.0, gt=0, description="First lockout; doubles at each further lockout.")
    session_idle_minutes: float = Field(30.0, gt=0, description="Idle session timeout.")
    session_hours: float = Field(12.0, gt=0, description="Absolute session lifetime.")
    token_max_days: int = Field(365, ge=1, le=3650, description="Longest API-token lifetime.")


class ApiSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Address `greffier serve` listens on.")
    port: int = Field(8443, ge=0, le=65535,
                      description="Port `greffier serve` listens on (0: any free port).")
    tls_cert: Path | None = Field(
        None, description="TLS certificate (PEM); default: the one `greffier init` made.")
    tls_key: Path | None = Field(None, description="TLS private key (PEM).")
    plain_http: bool = Field(
        False, description="Serve plain HTTP (refused unless host is loopback).")
    max_body_kb: int = Field(256, ge=1, description="Largest JSON request body (KB).")
    max_upload_mb: int = Field(200, ge=1, description="Largest uploaded document (MB).")
    rate_per_user: int = Field(
        240, ge=1, description="Requests per minute per user or token.")
    rate_per_ip: int = Field(600, ge=1, description="Requests per minute per client address.")
    login_rate_per_ip: int = Field(
        20, ge=1, description="Login and unseal attempts per minute per client address.")
    trusted_proxies: list[str] = Field(
        [], description="Reverse proxies whose X-Forwarded-For is believed.")


class Settings(BaseSettings):
    """All of Greffier's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="GREFFIER_", env_nested_delimiter="__", extra="forbid",
    )

    env: Literal["production", "development"] = Field(
        "production", description="Development relaxes nothing yet; reserved for the API.")
    data_dir: Path = Field(Path("/var/lib/greffier"), description="Holds all state.")
    ingest: IngestSettings = Field(default_factory=IngestSettings)  # type: ignore[arg-type]
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)  # type: ignore[arg-type]
    store: StoreSettings = Field(default_factory=StoreSettings)  # type: ignore[arg-type]
    search: SearchSettings = Field(default_factory=SearchSettings)  # type: ignore[arg-type]
    security: SecuritySettings = Field(default_factory=SecuritySettings)  # type: ignore[arg-type]
    llm: LlmSettings = Field(default_factory=LlmSettings)  # type: ignore[arg-type]
    audit: AuditSettings = Field(default_factory=AuditSettings)  # type: ignore[arg-type]
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)  # type: ignore[arg-type]
    identity: IdentitySettings = Field(default_factory=IdentitySettings)  # type: ignore[arg-type]
    api: ApiSettings = Field(default_factory=ApiSettings)  # type: ignore[arg-type]
    # Directory groups (LDAP / Active Directory): appliance/_directory_settings.py
    ldap: LdapSettings = Field(default_factory=LdapSettings)  # type: ignore[arg-type]
    # Single sign-on (OpenID Connect): appliance/_oidc_settings.py
    oidc: OidcSettings = Field(default_factory=OidcSettings)  # type: ignore[arg-type]

    def database_url(self) -> str:
        """The metadata database: the configured URL, else SQLite in the data directory."""
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'greffier.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first, then the TOML file (passed as init values), then defaults.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.api.plain_http and not _is_loopback(self.api.host):
            raise ValueError(
                "api.plain_http is allowed on a loopback address only (passwords and tokens "
                "would travel in clear): set api.tls_cert and api.tls_key, or api.host = "
                "'127.0.0.1'")
        if (self.api.tls_cert is None) != (self.api.tls_key is None):
            raise ValueError("api.tls_cert and api.tls_key go together")
        if self.store.backend == "server":
            if not self.store.url:
                raise ValueError("store.backend = 'server' needs store.url")
            parsed = urlparse(self.store.url)
            local = _is_loopback(parsed.hostname or "")
            if not local and parsed.scheme != "https":
                raise ValueError(
                    "store.url must use https for a remote Qdrant (the API key would travel "
                    "in clear)")
            if not local and self.store.api_key is None:
                raise ValueError("a remote Qdrant needs store.api_key")
        return self

    def resolved(self) -> Settings:
        return self.model_copy(update={"data_dir": self.data_dir.expanduser().resolve()})


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (explicit, ``$GREFFIER_CONFIG``, ./greffier.toml, /etc/greffier)."""
    path = config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if path is None:
        path = next((p for p in DEFAULT_CONFIG_PATHS if p.is_file()), None)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"Cannot read the configuration {path}: {exc}",
                              hint="Fix the file or point GREFFIER_CONFIG elsewhere.") from exc
    data.update(overrides)
    try:
        return Settings(**data).resolved()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Invalid configuration: {problems}",
                          hint="See the configuration reference in README.md.") from exc
