"""A results flow and helpers that seed responses through the conversation service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.catalogue import Catalogue
from bot.messages import Inbound
from service.conversations import ConversationService

SECRET = "test-address-key"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday, 10:00 in Helsinki

VISIT_YAML = """\
id: visit
title: {fi: Käynti, sv: Besök, en: Visit}
languages: [fi, sv, en]
default_language: fi
service_points: [north, south]
steps:
  - id: overall
    type: scale
    scale: 1-5
    metric: csat
    text: {fi: "Miten onnistuimme? 1-5", sv: "Hur lyckades vi? 1-5", en: "How did we do? 1-5"}
  - id: comment
    type: text
    optional: true
    text: {fi: "Kerro lisää", sv: "Berätta mer", en: "Tell us more"}
  - id: experience
    type: choice
    metric: fft
    text: {fi: "Kokemus 1-6", sv: "Upplevelse 1-6", en: "Experience 1-6"}
    options:
      - {id: very_good, score: 5, label: {fi: Erittäin hyvä, sv: Mycket bra, en: Very good}}
      - {id: good, score: 4, label: {fi: Hyvä, sv: Bra, en: Good}}
      - {id: neither, score: 3, label: {fi: Ei hyvä eikä huono, sv: Varken eller, en: Neither}}
      - {id: poor, score: 2, label: {fi: Huono, sv: Dålig, en: Poor}}
      - {id: very_poor, score: 1, label: {fi: Erittäin huono, sv: Mycket dålig, en: Very poor}}
      - {id: dont_know, score: null, label: {fi: En osaa sanoa, sv: Vet inte, en: Don't know}}
  - id: recommend
    type: nps
    text: {fi: "Suosittelisitko? 0-10", sv: "Rekommendera? 0-10", en: "Recommend? 0-10"}
closing: {fi: Kiitos!, sv: Tack!, en: Thank you!}
"""


def visit_catalogue(directory: Path) -> Catalogue:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "visit.yaml").write_text(VISIT_YAML, encoding="utf-8")
    return Catalogue.load(directory)


class Seeder:
    """Citizens answering the visit flow, each through ``ConversationService``."""

    def __init__(self, conversations: ConversationService) -> None:
        self.conversations = conversations
        self.people = 0

    def respond(
        self,
        replies: list[str],
        *,
        at: datetime = T0,
        point: str | None = "north",
        channel: str = "sms",
        language: str = "fi",
    ) -> None:
        self.people += 1
        answer_as(self.conversations, self.people, "visit", replies, at, point, channel, language)


def answer_as(
    conversations: ConversationService,
    person: int,
    flow_id: str,
    replies: list[str],
    at: datetime,
    point: str | None,
    channel: str,
    language: str,
) -> None:
    """Citizen number PERSON starts FLOW_ID at AT and sends REPLIES a second apart."""
    address = f"+35840{person:07d}" if channel == "sms" else f"person-{person}"
    conversations.start(channel, address, flow_id, now=at, language=language, service_point=point)
    for index, text in enumerate(replies):
        conversations.handle(
            Inbound(
                channel=channel,
                address=address,
                text=text,
                provider_id=f"{channel}-{person}-{index}",
            ),
            at + timedelta(seconds=index + 1),
        )
