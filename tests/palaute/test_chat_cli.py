"""`palaute chat FLOW_ID`: a scripted conversation through the real service and database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from palaute.cli import main
from tests.palaute.simulator_support import stored_answers, write_flows


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    settings = {"DATABASE_URL": db_url, "FLOWS_DIR": str(write_flows(tmp_path / "flows"))}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return settings


def test_a_scripted_chat_prints_one_line_per_bot_message_and_stores_the_answers(
    env: dict[str, str], db_url: str
) -> None:
    result = CliRunner().invoke(
        main, ["chat", "sim-test", "--lang", "fi"], input="1\nHylly tyhjä\n\nei\n"
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Hei! Kolme lyhyttä kysymystä.",
        "Miten käyntisi onnistui? Vastaa 1–5. [1 | 2 | 3 | 4 | 5]",
        "Mikä meni pieleen?",
        "Tuletko uudelleen? [Kyllä | Ei]",
        "Kiitos vastauksistasi!",
    ]
    assert stored_answers(db_url) == [
        ("simulator", "sim-test", "overall", 1, None, "1", "fi", False),
        ("simulator", "sim-test", "went_wrong", None, "Hylly tyhjä", "Hylly tyhjä", "fi", False),
        ("simulator", "sim-test", "again", None, "no", "ei", "fi", False),
    ]  # fmt: skip


def test_without_lang_the_flow_speaks_its_default_language(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["chat", "quick-poll"], input="")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("How did it feel?")


def test_each_chat_is_a_new_contact_unless_an_address_is_given(
    env: dict[str, str], db_url: str
) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["chat", "sim-test", "--address", "terminal-me"], input="5\n")
    assert first.output.splitlines()[-1] == "Mistä pidit?"
    # The same address again: the unfinished run is replaced by a fresh start.
    again = runner.invoke(main, ["chat", "sim-test", "--address", "terminal-me"], input="4\n")
    assert again.output.splitlines()[-1] == "Mistä pidit?"
    assert [row[2:4] for row in stored_answers(db_url)] == [("overall", 5), ("overall", 4)]


def test_lang_wins_over_the_language_the_contact_used_before(
    env: dict[str, str], db_url: str
) -> None:
    runner = CliRunner()
    finnish = runner.invoke(main, ["chat", "sim-test", "--address", "t-1", "--lang", "fi"], "4\n")
    assert finnish.output.splitlines()[-1] == "Mistä pidit?"
    swedish = runner.invoke(main, ["chat", "sim-test", "--address", "t-1", "--lang", "sv"], "5\n")
    assert swedish.output.splitlines() == [
        "Hej! Tre korta frågor.",
        "Hur gick ditt besök? Svara 1–5. [1 | 2 | 3 | 4 | 5]",
        "Vad tyckte du om?",
    ]
    # Without --lang the contact's remembered language (now Swedish) applies.
    again = runner.invoke(main, ["chat", "sim-test", "--address", "t-1"], "")
    assert again.output.splitlines()[0] == "Hej! Tre korta frågor."
    assert [row[6] for row in stored_answers(db_url)] == ["fi", "sv"]


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)  # validation only
def test_an_unknown_flow_or_language_is_refused_with_the_choices(env: dict[str, str]) -> None:
    unknown = CliRunner().invoke(main, ["chat", "library"], input="")
    assert unknown.exit_code == 2
    assert "unknown flow 'library'" in unknown.output
    assert "quick-poll, sim-test" in unknown.output

    language = CliRunner().invoke(main, ["chat", "quick-poll", "--lang", "sv"], input="")
    assert language.exit_code == 2
    assert "use one of: en, fi" in language.output


def test_an_unmigrated_database_says_to_run_db_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    monkeypatch.setenv("FLOWS_DIR", str(write_flows(tmp_path / "flows")))
    result = CliRunner().invoke(main, ["chat", "sim-test"], input="4\n")
    assert result.exit_code == 1
    assert "palaute db upgrade" in result.output


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_chat_reads_a_real_pipe(env: dict[str, str], db_url: str) -> None:
    palaute = Path(sys.executable).parent / "palaute"
    completed = subprocess.run(
        [str(palaute), "chat", "sim-test", "--lang", "en"],
        input="3\nQuiet rooms\nyes\n",
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "Hi! Three short questions.",
        "How was your visit? Reply 1–5. [1 | 2 | 3 | 4 | 5]",
        "What did you like?",
        "Will you come again? [Yes | No]",
        "Thank you for your answers!",
    ]
    assert [row[2:4] for row in stored_answers(db_url)] == [
        ("overall", 3),
        ("liked", None),
        ("again", None),
    ]
