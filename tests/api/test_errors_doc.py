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


def test_ageguard_additions_are_explained() -> None:
    """AgeGuard's own codes (TERMINAL_ID_REQUIRED first) say, in their own section, when they are answered."""
    text = DOC.read_text()
    additions = text.split("## AgeGuard's additions to the seeds' catalogue", 1)[1]
    for code, spec in CATALOGUE.items():
        if spec.extension:
            assert spec.note, code
            assert f"- `{code}` ({spec.status}," in additions
        else:
            assert f"`{code}`" not in additions
    assert "`Terminal-Id`" in additions.split("- `TERMINAL_ID_REQUIRED`", 1)[1].split("\n", 1)[0]
