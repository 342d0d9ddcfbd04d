"""Structured and markup text read by Greffier itself (no unstructured): JSON, NDJSON,
YAML, XML, CSV/TSV, reStructuredText and Org.

Data files become readable passages: ``key.sub: value`` lines, one block per record (a
top-level object's member, an array's element, an NDJSON line, a YAML document, an XML
element under the root), so a record stays together. Tables become ``cell | cell`` rows in
blocks of :data:`ROWS_PER_BLOCK`, each repeating the header. Text encodings are detected
(BOM, UTF-8, UTF-16 without BOM, else CP1252 as French exports use); ragged CSV rows are
kept. Runs in the parse worker, like every parser."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from security import ParseFailedError, SuspiciousArchiveError

from ._types import Block

STRUCTURED = frozenset({"json", "ndjson", "yaml", "xml", "csv", "tsv", "rst", "org"})
ROWS_PER_BLOCK = 40
MAX_DEPTH = 64  # nesting deeper than this is refused (a parser bomb, not a document)
MAX_EXPANDED_CHARS = 20_000_000  # YAML aliases can make a small file huge once flattened
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
         (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def parse(path: Path, fmt: str) -> list[Block]:
    text = read_text(path.read_bytes())
    if fmt == "json":
        return _records(_load_json(text), path.stem)
    if fmt == "ndjson":
        return _ndjson(text)
    if fmt == "yaml":
        return _yaml(text, path.stem)
    if fmt == "xml":
        return _xml(text)
    if fmt in ("csv", "tsv"):
        return _table(text, "\t" if fmt == "tsv" else None)
    if fmt == "rst":
        return _rst(text)
    if fmt == "org":
        return _org(text)
    raise ParseFailedError(f"No structured reader for {fmt}.")


def read_text(data: bytes) -> str:
    """Bytes to text: a BOM, else UTF-8, else UTF-16 (every other byte zero), else CP1252
    (else Latin-1, for the five bytes CP1252 leaves undefined)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    sample = data[:4096]
    if len(sample) >= 4:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if odd > len(sample) * 0.3 and even < len(sample) * 0.05:
            return data.decode("utf-16-le", errors="replace")
        if even > len(sample) * 0.3 and odd < len(sample) * 0.05:
            return data.decode("utf-16-be", errors="replace")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:  # one of the five bytes CP1252 leaves undefined
        return data.decode("latin-1")


# -- data files ----------------------------------------------------------------------------
def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise SuspiciousArchiveError("The JSON is nested too deeply to be a document.") from None
    except ValueError as exc:
        raise ParseFailedError(f"This is not valid JSON: {exc}.",
                               hint="Check the file is complete; re-export it.") from None


def _ndjson(text: str) -> list[Block]:
    blocks: list[Block] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise ParseFailedError(f"Line {number} is not valid JSON: {exc}.",
                                   hint="Each line of an NDJSON file is one JSON value.") from None
        blocks += _blocks(_lines(value, ""), f"#{number}")
    return blocks


def _yaml(text: str, name: str) -> list[Block]:
    import yaml  # type: ignore[import-untyped]

    try:
        documents = list(yaml.safe_load_all(text))  # plain data only: no Python objects
    except yaml.YAMLError as exc:
        raise ParseFailedError(f"This is not valid YAML: {str(exc)[:200]}.") from None
    except RecursionError:
        raise SuspiciousArchiveError("The YAML is nested too deeply to be a document.") from None
    blocks: list[Block] = []
    for document in documents:
        blocks += _records(document, name)
    return blocks


def _records(value: Any, name: str) -> list[Block]:
    """One block per top-level member or element (its key path as the first line)."""
    if isinstance(value, dict) and value:
        blocks: list[Block] = []
        for key, item in value.items():
            blocks += _blocks(_lines(item, str(key)), str(key))
        return blocks
    if isinstance(value, list) and value and not all(_scalar(v) for v in value):
        blocks = []
        for index, item in enumerate(value):
            blocks += _blocks(_lines(item, f"[{index}]"), f"{name}[{index}]")
        return blocks
    return _blocks(_lines(value, name), name)


def _blocks(lines: Iterator[str], title: str) -> list[Block]:
    body = "\n".join(lines)
    return [Block(kind="text", text=body)] if body.strip() else []


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _lines(value: Any, prefix: str, depth: int = 0, budget: list[int] | None = None
           ) -> Iterator[str]:
    """``path: value`` lines; arrays of scalars on one line."""
    budget = budget if budget is not None else [MAX_EXPANDED_CHARS]
    if depth > MAX_DEPTH:
        raise SuspiciousArchiveError(f"The data is nested over {MAX_DEPTH} levels deep.",
                                     hint="This is not a document; it is not indexed.")
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _lines(item, f"{prefix}.{key}" if prefix else str(key), depth + 1,
                              budget)
    elif isinstance(value, list):
        if all(_scalar(v) for v in value):
            line = f"{prefix}: " + ", ".join(_text(v) for v in value)
            yield _spend(line, budget)
        else:
            for index, item in enumerate(value):
                yield from _lines(item, f"{prefix}[{index}]", depth + 1, budget)
    else:
        yield _spend(f"{prefix}: {_text(value)}" if prefix else _text(value), budget)


def _spend(line: str, budget: list[int]) -> str:
    budget[0] -= len(line)
    if budget[0] < 0:
        raise SuspiciousArchiveError(
            "The data expands to over 20 million characters (aliases or repetition).",
            hint="This is not a document; it is not indexed.")
    return line


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _xml(text: str) -> list[Block]:
    from lxml import etree

    if re.search(r"<!ENTITY", text, re.IGNORECASE):
        raise SuspiciousArchiveError(
            "The XML declares entities (an entity-expansion bomb or external entities).",
            hint="Greffier does not expand XML entities; remove the DOCTYPE's entities.")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(text.encode("utf-8"), parser=parser)
    except etree.XMLSyntaxError as exc:
        raise ParseFailedError(f"This is not well-formed XML: {exc}.") from None
    blocks: list[Block] = []
    children = [c for c in root if isinstance(c.tag, str)] or [root]
    for child in children:
        lines = [f"{_local(e.tag)}: {' '.join(e.text.split())}" for e in child.iter()
                 if isinstance(e.tag, str) and e.text and e.text.strip()]
        lines += [f"{_local(e.tag)}.{_local(k)}: {v}" for e in child.iter()
                  if isinstance(e.tag, str) for k, v in e.attrib.items() if v.strip()]
        if lines:
            blocks.append(Block(kind="text", text="\n".join(lines)))
    return blocks


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _table(text: str, delimiter: str | None) -> list[Block]:
    sample = text[:20000]
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    rows = [[" ".join(cell.split()) for cell in row]
            for row in csv.reader(io.StringIO(text), delimiter=delimiter, strict=False)]
    rows = [row for row in rows if any(row)]  # ragged rows kept as they are
    if not rows:
        return []
    header, body = rows[0], rows[1:] or [[]]
    blocks = []
    for start in range(0, len(body), ROWS_PER_BLOCK):
        lines = [" | ".join(header), *(" | ".join(r) for r in body[start:start + ROWS_PER_BLOCK])]
        blocks.append(Block(kind="table", text="\n".join(line for line in lines if line)))
    return blocks


# -- markup --------------------------------------------------------------------------------
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+<>:._])\1{2,}\s*$")


def _rst(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    levels: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block(kind="text", text=" ".join(s.strip() for s in paragraph)))
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        underline = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and _RST_UNDERLINE.match(underline) and \
                len(underline.strip()) >= len(line.strip()) - 1 and not _RST_UNDERLINE.match(line):
            flush()
            char = underline.strip()[0]
            if char not in levels:
                levels.append(char)
            blocks.append(Block(kind="title", text=line.strip(), depth=levels.index(char)))
            i += 2
            continue
        # an overline or a transition, a directive or a comment, a blank line
        if _RST_UNDERLINE.match(line) or line.strip().startswith(".. ") or not line.strip():
            flush()
        else:
            paragraph.append(line)
        i += 1
    flush()
    return blocks


_ORG_HEADING = re.compile(r"^(\*+)\s+(?:(?:TODO|DONE)\s+)?(.*?)(?:\s+:[\w:@]+:)?\s*$")


def _org(text: str) -> list[Block]:
    blocks: list[Block] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block(kind="text", text=" ".join(s.strip() for s in paragraph)))
            paragraph.clear()

    for line in text.splitlines():
        heading = _ORG_HEADING.match(line)
        if heading:
            flush()
            blocks.append(Block(kind="title", text=heading.group(2),
                                depth=len(heading.group(1)) - 1))
        elif not line.strip() or line.lstrip().startswith(("#+", ":")):
            flush()  # keywords (#+TITLE), drawers (:PROPERTIES:) end a paragraph
        else:
            paragraph.append(line)
    flush()
    return blocks
