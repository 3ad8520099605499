"""docs/environment.md is generated from the schema and must not go stale."""

from __future__ import annotations

import re

from click.testing import CliRunner
from foundation_helpers import DOCS_ENVIRONMENT

from controller.cli import main
from controller.config_commands import environment_markdown
from hotconf.envmap import nested_name
from hotconf.schema import LEAVES

STALE = ("docs/environment.md is stale: it differs from `hotconf env --markdown`. "
         "Run `make docs` and commit the result.")


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def cells(row: str) -> list[str]:
    """The cells of a markdown table row; ``\\|`` inside a cell is not a separator."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]


def test_environment_doc_is_up_to_date() -> None:
    generated = CliRunner().invoke(main, ["env", "--markdown"], catch_exceptions=False).stdout

    assert DOCS_ENVIRONMENT.read_text() == generated, STALE


def test_environment_doc_lists_every_leaf_once() -> None:
    rows = table_rows(environment_markdown())[2:]

    paths = [cells(row)[2].strip("`") for row in rows]
    assert paths == [leaf.path for leaf in LEAVES]
    for row, leaf in zip(rows, LEAVES, strict=True):
        assert cells(row)[1] == f"`{nested_name(leaf.path)}`"
        assert cells(row)[0] == (f"`{leaf.env}`" if leaf.env else "")


def test_environment_doc_table_has_six_cells_in_every_row() -> None:
    rows = table_rows(environment_markdown())

    assert cells(rows[0]) == ["variable", "nested name", "path", "type", "default", "meaning"]
    broken = [row for row in rows if len(cells(row)) != 6]
    assert broken == [], "rows whose cells do not line up with the header"


def test_environment_doc_shows_the_choices_of_a_choice() -> None:
    row = next(row for row in table_rows(environment_markdown()) if "`ui.theme`" in row)

    assert cells(row)[3].replace("\\|", "|") == "one of light|dark|auto"


def test_environment_doc_follows_the_prefix() -> None:
    text = environment_markdown("MYBOT")

    assert "`MYBOT__BACKEND__SERVER_PORT`" in text
    assert "`MYBOT_BACKEND_PORT`" in text
    assert "AUTOBOT" not in text
