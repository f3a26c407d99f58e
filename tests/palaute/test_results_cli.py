"""``palaute results summary|export`` on a database seeded through the conversation
service (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from palaute.cli import main
from service.conversations import ConversationService
from tests.service.support import SECRET, Seeder, visit_catalogue


@pytest.fixture
def runner(
    engine: Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CliRunner:
    flows = tmp_path / "flows"
    catalogue = visit_catalogue(flows)
    seeder = Seeder(ConversationService(engine, catalogue, address_key_secret=SECRET))
    for _ in range(6):
        seeder.respond(["5", "Hyvä", "1", "10"], point="north")
    for _ in range(5):
        seeder.respond(["4", "ohita", "2", "9"], point="south", language="sv")
    seeder.respond(["1", "huono", "5", "0"], point="south")  # the one "1": fewer than 5
    seeder.respond(["1", "testi", "5", "0"], channel="simulator")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("FLOWS_DIR", str(flows))
    monkeypatch.setenv("ADDRESS_KEY_SECRET", SECRET)
    return CliRunner()


def test_summary_json_marks_suppressed_cells_without_a_count(runner: CliRunner) -> None:
    result = runner.invoke(main, ["results", "summary", "visit", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["flow"] == "visit" and data["runs"]["started"] == {"count": 12}
    overall = next(step for step in data["steps"] if step["id"] == "overall")
    assert overall["measure"] == "csat" and overall["responses"] == {"count": 12}
    cells = {cell["value"]: cell for cell in overall["distribution"]}
    assert cells[5]["count"] == 6 and cells[5]["percent"] == 50.0
    assert cells[1] == {"value": 1, "label": "1", "kind": "answer", "suppressed": True}
    # "1" hidden alone would be 12 - 6 - 5: the next smallest ("4", 5) is hidden too, and
    # csat (5s and 4s over answered) would give "4" back: suppressed as well.
    assert cells[4] == {"value": 4, "label": "4", "kind": "answer", "suppressed": True}
    assert cells[3]["count"] == 0
    assert overall["positive"] == {"suppressed": True}
    assert overall["mean"] == {"suppressed": True}
    recommend = next(step for step in data["steps"] if step["id"] == "recommend")
    assert recommend["nps"] == {"suppressed": True}

    with_tests = runner.invoke(main, ["results", "summary", "visit", "--json", "--include-test"])
    assert json.loads(with_tests.output)["runs"]["started"] == {"count": 13}

    south = runner.invoke(main, ["results", "summary", "visit", "--point", "south"])
    assert south.exit_code == 0, south.output
    assert "runs started 6, completed 6" in south.output


def test_summary_reports_bad_input_clearly(runner: CliRunner) -> None:
    unknown = runner.invoke(main, ["results", "summary", "nope"])
    assert unknown.exit_code == 1 and "no flow 'nope' is loaded (known: visit)" in unknown.output
    bad_date = runner.invoke(main, ["results", "summary", "visit", "--from", "1.3.2026"])
    assert bad_date.exit_code == 2 and "write YYYY-MM-DD" in bad_date.output


def test_export_csv_and_xlsx(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "visit.csv"
    result = runner.invoke(
        main, ["results", "export", "visit", "--format", "csv", "--out", str(out), "--ui", "en"]
    )
    assert result.exit_code == 0, result.output
    assert "12 responses written" in result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8-sig")), delimiter=";"))
    assert len(rows) == 12
    assert {row["Service point"] for row in rows} == {"north", "south"}
    assert rows[0]["experience"] == "Very good" and rows[0]["experience_value"] == "very_good"

    book_path = tmp_path / "visit.xlsx"
    result = runner.invoke(
        main,
        [
            "results",
            "export",
            "visit",
            "--format",
            "xlsx",
            "--out",
            str(book_path),
            "--point",
            "north",
        ],
    )
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(book_path, read_only=True)
    assert book.sheetnames == ["Vastaukset", "Yhteenveto"]
    assert len(list(book["Vastaukset"].iter_rows(values_only=True))) == 7
    book.close()
    assert not list(tmp_path.glob("*.partial"))
