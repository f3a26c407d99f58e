"""`palaute visits import`: CSV exports as Excel and patient systems write them in Finland."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from palaute.cli import main
from service.visits_csv import CsvImportError, read_export
from storage.db import make_engine
from tests.service.followup_support import SECRET, followup_rows, write_flows

# A Windows-1252 export from a patient system: Finnish headers, ; separators, CRLF,
# dd.mm.yyyy dates and hh.mm times in separate columns, numbers as people type them.
PATIENT_EXPORT = (
    "Käyntitunnus;Päivämäärä;Klo;Asiakkaan matkapuhelin;Toimipiste;Asiointikieli\r\n"
    "K-2001;2.6.2026;10.15;040 123 4567;Kaarinan terveysasema;suomi\r\n"
    "K-2002;2.6.2026;11.30;+358 50 765 4321;Kaarinan terveysasema;ruotsi\r\n"
    "K-2003;2.6.2026;12.00;401234568;Kaarinan terveysasema;suomi\r\n"  # Excel ate the 0
    "K-2004;31.6.2026;12.00;0401234569;Kaarinan terveysasema;suomi\r\n"  # no such date
    ";2.6.2026;12.30;0401234570;Kaarinan terveysasema;suomi\r\n"  # no id
    "K-2006;2.6.2026;13.00;02 123 4567;Kaarinan terveysasema;suomi\r\n"  # a landline
    "K-2007;2.6.2026;13.30;;Kaarinan terveysasema;suomi\r\n"  # no phone at all
    "K-2008;2.6.2026;14.00;0401234571;Kaarinan terveysasema;klingon\r\n"  # bad language
    ";;;;;\r\n"
    ";;;;;\r\n"
)

# Excel "CSV UTF-8": a BOM, comma separators, quoted fields with commas and line breaks.
BOOKING_EXPORT = (
    "Booking ID,Visit time,Phone,Location,Notes,Language\r\n"
    'B-1,2026-06-02 10:15,+358 40 111 2233,"Library, main","",sv\r\n'
    'B-2,2026-06-02 10:45,+358 40 111 2234,"Library, main","Needs help,\r\nwith stairs",en\r\n'
    "B-3,2026-06-02 25:00,+358 40 111 2235,Library,,en\r\n"
)


NOW = datetime(2026, 6, 2, 5, 0, tzinfo=UTC)  # the import runs at 08:00 Helsinki time


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setattr("palaute.commands.visits.utcnow", lambda: NOW)
    return {
        "DATABASE_URL": db_url,
        "FLOWS_DIR": str(write_flows(tmp_path / "flows")),
        "ADDRESS_KEY_SECRET": SECRET,
        "ORGANISATION_NAME": "Kaarina",
        "ORGANISATION_TIMEZONE": "Europe/Helsinki",
    }


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner(env=env).invoke(main, ["visits", "import", *args], catch_exceptions=False)


def write(tmp_path: Path, name: str, text: str, encoding: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_windows_1252_semicolon_export(env: dict[str, str], db: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "kaynnit.csv", PATIENT_EXPORT, "cp1252")
    result = run(env, str(path), "--column", "phone=Asiakkaan matkapuhelin", "--source", "lifecare")
    assert result.exit_code == 1, result.output  # some lines were rejected
    assert "windows-1252, semicolon-separated" in result.stderr
    assert "3 scheduled, 2 skipped, 0 already imported, 3 rejected." in result.stdout
    assert "no_channel 1, unreachable 1" in result.stdout
    assert "line 5: visit_at: '31.6.2026 12.00' is not a date and time" in result.stdout
    assert "line 6: external_id: missing" in result.stdout
    assert "line 9: language: 'klingon' is not a language code" in result.stdout
    rows = {r["external_id"]: r for r in followup_rows(db)}
    assert set(rows) == {"K-2001", "K-2002", "K-2003", "K-2006", "K-2007"}
    # 10:15 local on Tuesday 2 June + 2 h = 12:15 EEST = 09:15 UTC.
    assert rows["K-2001"]["due_at"] == datetime(2026, 6, 2, 9, 15, tzinfo=UTC)
    assert rows["K-2002"]["language"] == "sv"
    assert rows["K-2003"]["status"] == "scheduled"
    assert (rows["K-2006"]["status"], rows["K-2006"]["skip_reason"]) == ("skipped", "unreachable")
    assert rows["K-2007"]["skip_reason"] == "no_channel"
    assert {r["source"] for r in rows.values()} == {"lifecare"}


def test_reimport_schedules_nothing_twice(env: dict[str, str], db: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "kaynnit.csv", PATIENT_EXPORT, "cp1252")
    mapping = ("--column", "phone=Asiakkaan matkapuhelin")
    run(env, str(path), *mapping)
    before = followup_rows(db)
    again = run(env, str(path), *mapping)
    assert "0 scheduled, 0 skipped, 5 already imported, 3 rejected." in again.stdout
    assert followup_rows(db) == before


def test_utf8_bom_comma_export_with_quoted_fields(
    env: dict[str, str], db: Engine, tmp_path: Path
) -> None:
    path = write(tmp_path, "bookings.csv", "\ufeff" + BOOKING_EXPORT, "utf-8")
    result = run(env, str(path))
    assert "utf-8-sig, comma-separated" in result.stderr
    assert "2 scheduled, 0 skipped, 0 already imported, 1 rejected." in result.stdout
    # B-2's notes span two lines, so B-3 starts on line 5.
    assert "line 5: visit_at: '2026-06-02 25:00' is not a date and time" in result.stdout
    rows = {r["external_id"]: r for r in followup_rows(db)}
    assert set(rows) == {"B-1", "B-2"}
    assert rows["B-1"]["language"] == "sv"


def test_plain_utf8_with_scandinavian_letters(
    env: dict[str, str], db: Engine, tmp_path: Path
) -> None:
    text = (
        "Varausnumero;Käyntiaika;Puhelin;Yksikkö\n"
        "V-1;2.6.2026 klo 9.05;0401112233;Hälsocentralen i Åbo\n"
    )
    path = write(tmp_path, "varaukset.csv", text, "utf-8")
    result = run(env, str(path))
    assert result.exit_code == 0, result.output
    assert "utf-8, semicolon-separated" in result.stderr
    assert "1 scheduled" in result.stdout
    [row] = followup_rows(db)
    assert row["due_at"] == datetime(2026, 6, 2, 8, 5, tzinfo=UTC)  # 11:05 local


def test_control_characters_in_a_row_are_cleaned_and_the_file_is_stored(
    env: dict[str, str], db: Engine, tmp_path: Path
) -> None:
    text = (
        "Varausnumero;Käyntiaika;Puhelin;Yksikkö\n"
        "V-\x001;2.6.2026 klo 9.05;0401112233;Kirjasto\x07\n"
        "V-2;2.6.2026 klo 9.35;0401112234;Kirjasto\n"
    )
    result = run(env, str(write(tmp_path, "varaukset.csv", text, "utf-8")))
    assert result.exit_code == 0, result.output
    assert "2 scheduled" in result.stdout
    assert [row["external_id"] for row in followup_rows(db)] == ["V-1", "V-2"]


def test_dry_run_stores_nothing(env: dict[str, str], db: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "kaynnit.csv", PATIENT_EXPORT, "cp1252")
    result = run(env, str(path), "--column", "phone=Asiakkaan matkapuhelin", "--dry-run")
    assert "DRY RUN, nothing stored: 3 scheduled, 2 skipped" in result.stdout
    assert "line 5:" in result.stdout
    assert followup_rows(db) == []


def test_dry_run_after_import_reports_already_imported(
    env: dict[str, str], db: Engine, tmp_path: Path
) -> None:
    path = write(tmp_path, "bookings.csv", "\ufeff" + BOOKING_EXPORT, "utf-8")
    run(env, str(path))
    result = run(env, str(path), "--dry-run")
    assert "0 scheduled, 0 skipped, 2 already imported, 1 rejected." in result.stdout


def test_unrecognised_columns_explain_how_to_map(env: dict[str, str], tmp_path: Path) -> None:
    path = write(tmp_path, "odd.csv", "Asiakas;Milloin\nX;2.6.2026\n", "utf-8")
    result = CliRunner(env=env).invoke(main, ["visits", "import", str(path)])
    assert result.exit_code == 1
    assert "cannot tell which column holds external_id" in result.output
    assert "'Asiakas', 'Milloin'" in result.output
    assert "--column external_id=" in result.output


def test_mapping_to_a_missing_column_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    path = write(tmp_path, "k.csv", PATIENT_EXPORT, "cp1252")
    result = CliRunner(env=env).invoke(
        main, ["visits", "import", str(path), "--column", "phone=GSM"]
    )
    assert result.exit_code == 1
    assert "the file has no column 'GSM'" in result.output


def test_large_file_shows_progress_and_imports_every_row(
    env: dict[str, str], db: Engine, tmp_path: Path
) -> None:
    lines = ["Käyntitunnus;Käyntiaika;Puhelin"]
    lines += [f"L-{i};2.6.2026 10.00;+35840{i:07d}" for i in range(1200)]
    path = write(tmp_path, "big.csv", "\r\n".join(lines) + "\r\n", "cp1252")
    result = run(env, str(path))
    assert result.exit_code == 0, result.output
    assert "Importing" in result.stderr
    assert "1200 scheduled" in result.stdout
    assert len(followup_rows(db)) == 1200


def test_sniffing_prefers_the_separator_of_the_header() -> None:
    export = read_export(b"id,visit_at,phone\n1,2026-06-02T10:00+03:00,0401234567\n")
    assert export.delimiter == "," and export.rows[0].values["phone"] == "0401234567"
    export = read_export(b'"Nimi, etunimi";id;aika\n"Virtanen, Ville";7;2.6.2026 10.00\n')
    assert export.delimiter == ";" and export.rows[0].values["external_id"] == "7"


def test_empty_file_is_refused() -> None:
    with pytest.raises(CsvImportError, match="empty"):
        read_export(b"\xef\xbb\xbf\r\n")


def test_report_shows_what_became_of_the_visits(
    env: dict[str, str], db: Engine, tmp_path: Path
) -> None:
    path = write(tmp_path, "kaynnit.csv", PATIENT_EXPORT, "cp1252")
    run(env, str(path), "--column", "phone=Asiakkaan matkapuhelin")
    result = CliRunner(env=env).invoke(main, ["visits", "report"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert lines[0] == "visit-survey: 5 visits"
    assert "sent       0 (0%)" in lines
    assert "skipped    1 (20%)  no_channel" in lines
    assert "skipped    1 (20%)  unreachable" in lines
    assert "waiting    3 (60%)" in lines


REPO_FLOWS = Path(__file__).resolve().parents[2] / "flows"
MIXED_POINTS = (
    "external_id;visit_at;phone;service_point\n"
    "L-1;2.6.2026 10.00;0401112233;kaarina-main-library\n"
    "H-1;2.6.2026 10.00;0401112234;kaarina-health-centre\n"
)


@pytest.mark.parametrize("dry_run", [False, True], ids=["import", "dry-run"])
def test_point_of_a_flow_without_followup_is_rejected(
    env: dict[str, str], db: Engine, tmp_path: Path, dry_run: bool
) -> None:
    # Only health-centre-fft has `followup:`; kaarina-main-library belongs to library-visit.
    env = dict(env, FLOWS_DIR=str(REPO_FLOWS))
    path = write(tmp_path, "mixed.csv", MIXED_POINTS, "utf-8")
    result = run(env, str(path), *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 1, result.output
    assert "1 scheduled, 0 skipped, 0 already imported, 1 rejected." in result.stdout
    assert (
        "line 2: service_point: 'kaarina-main-library' belongs to flow library-visit, which has "
        "no `followup:` section: add `followup:` to library-visit or name the follow-up flow "
        "in `flow`" in result.stdout
    )
    expected = [] if dry_run else ["H-1"]
    assert [r["external_id"] for r in followup_rows(db)] == expected
