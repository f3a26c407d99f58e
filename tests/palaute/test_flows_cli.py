"""`palaute flows validate | schema | test`: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from palaute.cli import main

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
id: tiny
title: {fi: Pieni, sv: Liten, en: Tiny}
languages: [fi, sv, en]
default_language: fi
closing: {fi: Kiitos, sv: Tack, en: Thanks}
steps:
  - id: q1
    type: scale
    text: {fi: "Arvio 1-5?", sv: "Betyg 1-5?", en: "Rating 1-5?"}
"""


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FLOWS_DIR", str(ROOT / "flows"))
    monkeypatch.delenv("SMS_MAX_SEGMENTS", raising=False)
    return CliRunner()


def test_validate_the_shipped_flows(runner: CliRunner) -> None:
    result = runner.invoke(main, ["flows", "validate"])
    assert result.exit_code == 0, result.output
    assert "library-visit.yaml: ok: library-visit, 5 steps, fi/sv/en" in result.output
    assert "3 file(s), 0 error(s), 0 warning(s)" in result.output
    # The SMS cost of every text, per language: segments, alphabet, units.
    assert "overall.text          1 GSM 116     1 GSM 116     1 GSM 107" in result.output
    assert "mood.text     2 UCS 82      2 UCS 84      2 UCS 82" in result.output


def test_validate_reports_every_error_and_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    broken = GOOD.replace("default_language: fi", "default_language: de").replace(
        "type: scale", "type: scale\n    nxet: end"
    )
    (tmp_path / "broken.yaml").write_text(broken)
    result = runner.invoke(main, ["flows", "validate", str(tmp_path / "broken.yaml")])
    assert result.exit_code == 1
    assert f"{tmp_path}/broken.yaml:4:19: error: default_language:" in result.output
    assert f"{tmp_path}/broken.yaml:9:5: error: steps[0].nxet: unknown key `nxet`" in (
        result.output
    )
    assert "hint: Did you mean 'next'?" in result.output
    assert "1 file(s), 2 error(s), 0 warning(s)" in result.output


def test_yaml_syntax_error_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("id: x\nsteps: [\n")
    result = runner.invoke(main, ["flows", "validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "bad.yaml:3:1: error: (YAML syntax): invalid YAML" in result.output


def test_segment_warnings_do_not_fail_unless_strict(runner: CliRunner, tmp_path: Path) -> None:
    long = GOOD.replace('"Rating 1-5?"', '"' + "Please rate us. " * 12 + '"')
    path = tmp_path / "long.yaml"
    path.write_text(long)
    result = runner.invoke(main, ["flows", "validate", str(path), "--max-segments", "1"])
    assert result.exit_code == 0, result.output
    assert f"{path}:9:" in result.output
    assert "warning: steps[0].text.en: costs 2 segments (GSM-7, 192 units), more than 1" in (
        result.output
    )
    assert "1 file(s), 0 error(s), 1 warning(s)" in result.output
    strict = runner.invoke(
        main, ["flows", "validate", str(path), "--max-segments", "1", "--strict"]
    )
    assert strict.exit_code == 1
    roomy = runner.invoke(main, ["flows", "validate", str(path), "--no-segments"])
    assert "0 warning(s)" in roomy.output  # 2 segments is within the default limit
    assert "SMS segments" not in roomy.output


def test_validate_a_missing_path_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["flows", "validate", "no/such/file.yaml"])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_schema_prints_draft_2020_12_json(runner: CliRunner) -> None:
    result = runner.invoke(main, ["flows", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "steps" in schema["properties"]


def test_test_runs_the_shipped_transcripts_with_coverage(runner: CliRunner) -> None:
    result = runner.invoke(main, ["flows", "test", "--coverage"])
    assert result.exit_code == 0, result.output
    assert "0 failed, 0 branch(es) not covered" in result.output


def test_test_fails_on_a_wrong_transcript(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "flow: quick-poll\nlanguage: en\nname: wrong closing\nconversation:\n"
        '  - bot: "How did your visit go today? Reply with a face or a number: '
        '😀 4, 🙂 3, 🙁 2, 😞 1"\n'
        '  - citizen: "4"\n    bot: "Thanks! Want to tell us more? Write a few words, or '
        'reply SKIP."\n'
        '  - citizen: "skip"\n    bot: "Thanks a lot!"\n'
    )
    result = runner.invoke(main, ["flows", "test", str(tmp_path), "--coverage"])
    assert result.exit_code == 1
    assert "FAIL " in result.output and "wrong closing" in result.output
    assert "! expected: Thanks a lot!" in result.output
    assert "! got:      Thank you for answering!" in result.output
    assert "NOT COVERED library-visit: no transcripts" in result.output
    assert "1 transcript(s): 0 passed, 1 failed" in result.output
