"""The transcript runner: the shipped transcripts pass, and a wrong one fails loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.catalogue import Catalogue
from bot.flow import END
from bot.transcripts import read_transcripts, read_transcripts_text, run_transcript, uncovered

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = Catalogue.load(ROOT / "flows")
TRANSCRIPTS, PROBLEMS = read_transcripts([ROOT / "tests" / "transcripts"])

LOW_SCORE_FI = """\
flow: library-visit
language: fi
name: low score
conversation:
  - bot: "Hei! Kaarinan kirjasto kysyy: miten onnistuimme käynnilläsi? Vastaa numerolla 1-5 (1 = huonosti, 5 = erinomaisesti)."
  - citizen: "2"
    bot: "Olemme pahoillamme. Mikä meni pieleen? Kerro omin sanoin tai vastaa OHITA."
status: active
answers: {overall: 2}
skipped: []
"""  # noqa: E501


def test_shipped_transcripts_read_cleanly() -> None:
    assert PROBLEMS == []
    assert len(TRANSCRIPTS) >= 18


@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=[t.title for t in TRANSCRIPTS])
def test_shipped_transcript_passes(transcript: object) -> None:
    result = run_transcript(transcript, CATALOGUE)  # type: ignore[arg-type]
    assert result.passed, "\n".join(result.failures)


def test_every_branch_of_every_example_is_covered_in_every_language() -> None:
    results = [run_transcript(t, CATALOGUE) for t in TRANSCRIPTS]
    for flow in CATALOGUE.all():
        assert uncovered(flow, results) == {}, flow.id


def test_a_passing_transcript_records_the_path() -> None:
    (transcript,), problems = read_transcripts_text(LOW_SCORE_FI, "low.yaml")
    assert problems == []
    result = run_transcript(transcript, CATALOGUE)
    assert result.passed, result.failures
    assert result.path == ["overall", "what_went_wrong"]
    library = CATALOGUE.get("library-visit")
    assert library is not None
    missing = uncovered(library, [result])
    assert ("overall", "what_liked") in missing["fi"]
    assert ("comment", END) in missing["sv"]


def test_a_wrong_bot_line_fails_with_a_diff_and_its_line() -> None:
    wrong = LOW_SCORE_FI.replace("Mikä meni pieleen?", "Mikä meni vikaan?")
    (transcript,), _ = read_transcripts_text(wrong, "low.yaml")
    result = run_transcript(transcript, CATALOGUE)
    assert not result.passed
    (failure,) = result.failures
    assert failure.startswith("low.yaml:6: the bot's messages differ")
    assert "! expected: Olemme pahoillamme. Mikä meni vikaan?" in failure
    assert "! got:      Olemme pahoillamme. Mikä meni pieleen?" in failure


def test_wrong_answers_and_status_fail() -> None:
    wrong = LOW_SCORE_FI.replace("{overall: 2}", "{overall: 3}").replace(
        "status: active", "status: completed"
    )
    (transcript,), _ = read_transcripts_text(wrong, "low.yaml")
    failures = run_transcript(transcript, CATALOGUE).failures
    assert any("expected the run to end completed, it is active" in f for f in failures)
    assert any("answers differ" in f and "{'overall': 2}" in f for f in failures)


def test_time_jumps_expire_the_run() -> None:
    text = LOW_SCORE_FI.replace(
        "status: active",
        "  - at: +23h\n    citizen: kirjat\n"
        '    bot: "Mitä varten kävit kirjastossa? Vastaa 1-5: 1 lainaus tai palautus, '
        '2 lukeminen tai opiskelu, 3 tapahtuma, 4 tietokone tai tulostus, 5 muu asia"\n'
        "  - at: +24h\n    bot: []\n    status: expired\nstatus: expired",
    ).replace("{overall: 2}", "{overall: 2, what_went_wrong: kirjat}")
    (transcript,), problems = read_transcripts_text(text, "t.yaml")
    assert problems == []
    result = run_transcript(transcript, CATALOGUE)
    assert result.passed, result.failures


def test_replying_to_a_closed_run_is_reported() -> None:
    text = LOW_SCORE_FI.replace(
        "status: active", "  - at: +25h\n    bot: []\n  - citizen: hei\n    bot: []\n"
    ).replace("answers: {overall: 2}\n", "")
    (transcript,), _ = read_transcripts_text(text, "t.yaml")
    (failure,) = run_transcript(transcript, CATALOGUE).failures
    assert "the run is already expired" in failure


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (('  - citizen: "2"', '  - citzen: "2"'), 6, "unknown key `citzen`"),
        (('  - bot: "Hei!', '  - citizen: x\n    bot: "Hei!'), 5, "the first turn is what"),
        (('    bot: "Olemme', '    at: 25h\n    bot: "Olemme'), 7, "'25h' is not a time jump"),
        (("status: active", "status: done"), 8, "unknown status 'done'"),
        (('    bot: "Olemme pahoillamme.', '    boot: "Olemme pahoillamme.'), 6, "missing `bot`"),
    ],
)
def test_broken_transcripts_are_reported_with_lines(
    change: tuple[str, str], line: int, message: str
) -> None:
    transcripts, problems = read_transcripts_text(LOW_SCORE_FI.replace(*change), "t.yaml")
    assert transcripts == []
    assert any(p.line == line and message in p.message for p in problems), [
        p.format() for p in problems
    ]


def test_unknown_flow_or_language() -> None:
    text = LOW_SCORE_FI.replace("flow: library-visit", "flow: nope")
    (transcript,), _ = read_transcripts_text(text, "t.yaml")
    assert "no flow 'nope'" in run_transcript(transcript, CATALOGUE).failures[0]
    text = LOW_SCORE_FI.replace("language: fi", "language: de")
    (transcript,), _ = read_transcripts_text(text, "t.yaml")
    assert "does not declare language 'de'" in run_transcript(transcript, CATALOGUE).failures[0]
