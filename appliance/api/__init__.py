"""The REST API v1 (FastAPI): thin routes over the service layer."""

from ._app import create_app

__all__ = ["create_app"]
