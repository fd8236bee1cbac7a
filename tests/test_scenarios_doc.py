"""docs/scenarios.md shows the catalogue as the data holds it."""

from pathlib import Path

from idp import scenarios

DOC = Path(__file__).resolve().parent.parent / "docs" / "scenarios.md"
START = "<!-- generated from idp.scenarios.markdown_table()"
END = "<!-- end of the generated table -->"


def test_the_doc_table_is_the_catalogue():
    text = DOC.read_text()
    table = text.split(START, 1)[1].split("\n", 1)[1].split(END, 1)[0]
    assert table == scenarios.markdown_table(), (
        "docs/scenarios.md is out of date: paste idp.scenarios.markdown_table() between the markers"
    )


def test_every_scenario_has_a_row():
    rows = scenarios.markdown_table().splitlines()[2:]
    assert len(rows) == len(scenarios.CATALOGUE) >= 24
