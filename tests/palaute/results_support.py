"""Shared by the result page tests: the library flow with a score, a choice with "don't
know" and a comment, and citizens answering it through the real conversation service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from palaute.app import create_app
from service.conversations import ConversationService
from tests.palaute.dashboard_support import add_staff
from tests.palaute.simulator_support import NOW, Clock
from tests.service.staff_support import CHEAP_ARGON2, write_staff_flows
from tests.service.support import answer_as

RESULTS_LIBRARY_YAML = """\
id: library-visit
title: {fi: Kirjastokäynti, sv: Biblioteksbesök, en: Library visit}
languages: [fi, sv, en]
default_language: fi
service_points: [main-library, village-library]
triggers:
  codes:
    - {code: main_library, service_point: main-library}
    - {code: village_library, service_point: village-library}
closing: {fi: Kiitos!, sv: Tack!, en: Thanks!}
steps:
  - id: overall
    type: scale
    scale: "1-5"
    metric: csat
    text:
      fi: Miten käyntisi onnistui? Vastaa 1–5.
      sv: Hur gick ditt besök? Svara 1–5.
      en: How was your visit? Reply 1–5.
  - id: found
    type: choice
    text:
      fi: Löysitkö etsimäsi?
      sv: Hittade du det du sökte?
      en: Did you find what you looked for?
    options:
      - {id: all, score: 5, label: {fi: Kaiken, sv: Allt, en: Everything}}
      - {id: some, score: 3, label: {fi: Osan, sv: En del, en: Some}}
      - {id: none, score: 1, label: {fi: En mitään, sv: Inget, en: Nothing}}
      - {id: dont_know, score: null, label: {fi: En osaa sanoa, sv: Vet inte, en: Don't know}}
  - id: comment
    type: text
    optional: true
    text: {fi: "Kerro lisää", sv: "Berätta mer", en: "Tell us more"}
followup:
  delay: 2h
  window: {start: "09:00", end: "20:00", days: [mon, tue, wed, thu, fri, sat]}
"""


def make_results_app(db_url: str, tmp_path: Path, clock: Clock | None = None) -> Flask:
    """The staff app with the results library flow and the four staff users."""
    flows = write_staff_flows(tmp_path / "flows")
    (flows / "library-visit.yaml").write_text(RESULTS_LIBRARY_YAML, encoding="utf-8")
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "FLOWS_DIR": flows,
            "CLOCK": clock or Clock(),
            "SESSION_COOKIE_SECURE": False,
            **CHEAP_ARGON2,
        }
    )
    add_staff(app)
    return app


class Citizens:
    """People answering the library flow by SMS (or another channel) through the real
    ``ConversationService``: each ``answer`` is one response."""

    def __init__(self, app: Flask) -> None:
        self.conversations: ConversationService = app.extensions["palaute"].conversations
        self.count = 0

    def answer(
        self,
        replies: list[str],
        *,
        point: str = "main-library",
        days_ago: int = 1,
        channel: str = "sms",
        language: str = "fi",
        **_: Any,
    ) -> None:
        self.count += 1
        at = NOW - timedelta(days=days_ago)
        answer_as(
            self.conversations, self.count, "library-visit", replies, at, point, channel, language
        )
