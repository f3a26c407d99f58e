"""Shared by the simulator, app, chat and browser tests: a small flow and a migrated DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from palaute.app import create_app
from storage.db import make_engine

SURVEY_YAML = """\
id: sim-test
title:
  fi: Kirjaston testikysely
  sv: Bibliotekets testenkät
  en: Library test survey
languages: [fi, sv, en]
default_language: fi
triggers:
  keywords:
    fi: [TESTI]
    sv: [TESTA]
    en: [TRYOUT]
closing:
  fi: Kiitos vastauksistasi!
  sv: Tack för dina svar!
  en: Thank you for your answers!
steps:
  - id: welcome
    type: message
    text:
      fi: Hei! Kolme lyhyttä kysymystä.
      sv: Hej! Tre korta frågor.
      en: Hi! Three short questions.
  - id: overall
    type: scale
    scale: "1-5"
    text:
      fi: Miten käyntisi onnistui? Vastaa 1–5.
      sv: Hur gick ditt besök? Svara 1–5.
      en: How was your visit? Reply 1–5.
    next:
      - if: {overall: {le: 2}}
        goto: went_wrong
      - goto: liked
  - id: went_wrong
    type: text
    text:
      fi: Mikä meni pieleen?
      sv: Vad gick fel?
      en: What went wrong?
    next: again
  - id: liked
    type: text
    text:
      fi: Mistä pidit?
      sv: Vad tyckte du om?
      en: What did you like?
  - id: again
    type: yes_no
    text:
      fi: Tuletko uudelleen?
      sv: Kommer du igen?
      en: Will you come again?
"""

POLL_YAML = """\
id: quick-poll
title:
  fi: Pikakysely
  en: Quick poll
languages: [en, fi]
default_language: en
closing:
  fi: Kiitos!
  en: Thanks!
steps:
  - id: mood
    type: scale
    scale: smiley-4
    text:
      fi: Miltä tuntui?
      en: How did it feel?
"""


def write_flows(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sim-test.yaml").write_text(SURVEY_YAML, encoding="utf-8")
    (directory / "quick-poll.yaml").write_text(POLL_YAML, encoding="utf-8")
    return directory


NOW = datetime(2026, 5, 14, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the tests move by hand (the app reads it through its CLOCK config)."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def make_app(db_url: str, flows_dir: Path, clock: Clock | None = None, **config: Any) -> Flask:
    """The real app on ``db_url`` with the test flows; nothing faked."""
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "FLOWS_DIR": write_flows(flows_dir),
            "CLOCK": clock or Clock(),
            "SIMULATOR_ENABLED": True,
            **config,
        }
    )


def close_app(app: Flask) -> None:
    app.extensions["palaute"].close()


def stored_answers(db_url: str) -> list[tuple[Any, ...]]:
    """(channel, flow, step, int value, text value, raw text, language, skipped), in order."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT c.channel, a.flow_id, a.step_id, a.value_int, a.value_text, "
                    "a.raw_text, a.language, a.skipped FROM answers a "
                    "JOIN contacts c ON c.id = a.contact_id ORDER BY a.id"
                )
            ).all()
        return [tuple(row) for row in rows]
    finally:
        engine.dispose()
