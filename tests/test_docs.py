"""Docs are tested: every setting and every CLI command appears in the README."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import click
import pytest
from pydantic import BaseModel

from appliance import Settings
from appliance.cli import cli

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


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


PACKAGES = ("ingest", "embeddings", "retrieval", "generation", "security", "appliance")


def _texts(node: ast.expr, constants: dict[str, list[str]]) -> list[str]:
    """Every string an expression can evaluate to; an f-string's fields become ``{}``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        parts = [_texts(v, constants) if isinstance(v, ast.Constant) else ["{}"]
                 for v in node.values]
        return ["".join(p[0] for p in parts)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [a + b for a in _texts(node.left, constants)
                for b in _texts(node.right, constants)]
    if isinstance(node, ast.IfExp):
        return _texts(node.body, constants) + _texts(node.orelse, constants)
    if isinstance(node, ast.Name):
        return constants.get(node.id, ["{}"])
    return ["{}"]


def _hints() -> list[tuple[str, str]]:
    """(where, text) of every ``hint=`` given in the sources."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            constants = {t.id: _texts(n.value, {}) for n in tree.body
                         if isinstance(n, ast.Assign) for t in n.targets
                         if isinstance(t, ast.Name)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    for keyword in node.keywords:
                        if keyword.arg == "hint":
                            found += [(f"{path.relative_to(ROOT)}:{node.lineno}", text)
                                      for text in _texts(keyword.value, constants)]
    return found


HINTS = _hints()
COMMANDS = sorted({(where, match) for where, text in HINTS
                   for match in re.findall(r"`greffier ([^`]*)`", text)})


def test_hints_are_collected() -> None:
    assert len(HINTS) > 20 and len(COMMANDS) >= 5  # the collector sees the sources


def _is_placeholder(token: str) -> bool:
    return "{}" in token or token.isupper() or token.startswith(("<", "/", "."))


@pytest.mark.parametrize(("where", "command"), COMMANDS)
def test_every_command_named_in_a_hint_exists(where: str, command: str) -> None:
    current: click.Command = cli
    for token in shlex.split(command):
        if token.startswith("-"):
            name = token.split("=", 1)[0]
            options = {o for p in current.params for o in (*p.opts, *p.secondary_opts)}
            assert name in options, f"{where}: `greffier {command}`: {current.name} has no {name}"
        elif isinstance(current, click.Group):
            assert token in current.commands, (
                f"{where}: `greffier {command}`: no command {token!r} in {current.name}")
            current = current.commands[token]
        else:
            assert _is_placeholder(token) or current.params, (
                f"{where}: `greffier {command}`: {current.name} takes no argument {token!r}")
