"""schemathesis against the OpenAPI description: generated requests to every operation
never get a 5xx, and responses conform to the description."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from apiharness import Api, api_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

pytestmark = pytest.mark.integration


def _api(root: Path) -> Api:
    docs = root / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Security incidents go to the CERT team, extension 4242.")
    api = Api(api_settings(root))
    api.user("reda", "editor")
    staff = api.group("staff", "reda")
    with api.rt.using() as app:
        app.ingest([docs], acl=(staff,))
    return api


_ROOT = Path(__import__("tempfile").mkdtemp(prefix="greffier-schema-"))
_API = _api(_ROOT)
_TOKEN = _API.token("reda", "read", "ask", "ingest")
schema = schemathesis.openapi.from_asgi("/openapi.json", _API.app)


@pytest.fixture(scope="module", autouse=True)
def _close() -> Iterator[None]:
    yield
    _API.close()


def test_the_description_names_its_security_schemes() -> None:
    raw = _API.app.openapi()
    schemes = raw["components"]["securitySchemes"]
    assert schemes["token"]["scheme"] == "bearer"
    assert schemes["session"]["name"] == "__Host-greffier-session"
    assert raw["paths"]["/v1/search"]["post"]["security"]
    assert "security" not in raw["paths"]["/healthz"]["get"]


@schema.exclude(path_regex="^/v1/(seal|unseal)$").parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_generated_requests(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {_TOKEN}"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance])
