"""Docs are tested: every setting and every CLI command appears in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from appliance import Settings
from appliance.cli import cli

pytestmark = pytest.mark.unit
README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _setting_names(model: type[BaseModel], prefix: str = "") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += _setting_names(annotation, f"{prefix}{name}.")
        else:
            names.append(prefix + name)
    return names


@pytest.mark.parametrize("name", _setting_names(Settings))
def test_every_setting_is_documented(name: str) -> None:
    assert f"| `{name}` |" in README


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_cli_command_is_documented(command: str) -> None:
    assert f"`greffier {command}" in README


def test_readme_starts_with_the_two_commands() -> None:
    head = README[:400]
    assert "make demo" in head and "make test" in head
