"""The CLI while ``greffier serve`` runs: it holds the data directory, so commands talk to
it over its root-only Unix socket (peer credentials checked by the server, every call
audited as the local operator), or refuse with what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from security import GreffierError

from .._appliance import current_user
from .._settings import Settings


class ServiceRunningError(GreffierError):
    """``greffier serve`` holds the data directory; this command cannot open it."""


def socket_path(settings: Settings) -> Path:
    return settings.data_dir / "greffier.sock"


class LocalApi:
    """The running service's API, reached over its Unix socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._client: Any = httpx.Client(  # or a TestClient (InProcessApi)
            transport=httpx.HTTPTransport(uds=str(path)), base_url="http://greffier.local",
            headers={"X-Greffier-Operator": current_user()}, timeout=600.0)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise GreffierError(f"The running service did not answer on {self.path}: {exc}.",
                                hint="Check `systemctl status greffier` (or the terminal "
                                "running `greffier serve`).") from exc
        return _result(response)

    def close(self) -> None:
        self._client.close()


class InProcessApi(LocalApi):
    """No service runs: the same routes and use cases, in this process, over a Runtime
    opened for the command (unsealed with the operator's secret, sealed again after)."""

    def __init__(self, settings: Settings) -> None:
        from fastapi.testclient import TestClient

        from .._unseal import kek_source
        from ..api import create_app
        from ..service import Runtime

        self.path = settings.data_dir
        self._rt = Runtime(settings)
        try:
            self._rt.unseal(kek_source(settings), user=current_user())
        except BaseException:
            self._rt.close()
            raise
        self._client = TestClient(create_app(self._rt, local_socket=True),
                                  base_url="http://greffier.local", raise_server_exceptions=False,
                                  headers={"X-Greffier-Operator": current_user()})

    def close(self) -> None:
        self._client.close()
        self._rt.close()


def service_api(settings: Settings) -> LocalApi:
    """The running service over its socket, else the same API in this process."""
    return local_api(settings) or InProcessApi(settings)


def _result(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text[:200]}
        raise GreffierError(str(problem.get("detail") or problem.get("title")),
                            hint=problem.get("hint"))
    if response.status_code == 204:
        return None
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.text


def local_api(settings: Settings) -> LocalApi | None:
    """The running service, if one answers on this data directory's socket."""
    path = socket_path(settings)
    if not path.exists():
        return None
    api = LocalApi(path)
    try:
        api.call("GET", "/healthz")
    except GreffierError:
        api.close()
        return None
    return api


def refuse_while_serving(settings: Settings, command: str) -> None:
    """A command that needs the data directory itself, while the service holds it."""
    api = local_api(settings)
    if api is None:
        return
    api.close()
    raise ServiceRunningError(
        f"`greffier serve` is running on {settings.data_dir} and holds it: `greffier "
        f"{command}` cannot open it alongside.",
        hint="Use the REST API (docs/API.md), or stop the service first "
        "(systemctl stop greffier); search, ask, status, users, groups and tokens go through "
        "the running service by themselves.")
