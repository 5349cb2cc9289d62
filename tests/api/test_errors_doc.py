"""docs/errors.md is generated from the catalogue (`python -m ageguard.errors > docs/errors.md`)."""

from __future__ import annotations

from pathlib import Path

from ageguard.errors import CATALOGUE, markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_errors_doc_is_generated_from_the_catalogue() -> None:
    assert DOC.read_text() == markdown_table(), "docs/errors.md is stale: regenerate it"


def test_every_code_is_documented() -> None:
    text = DOC.read_text()
    for code, spec in CATALOGUE.items():
        assert f"| {spec.status} | `{code}` |" in text
