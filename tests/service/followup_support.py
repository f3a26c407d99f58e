"""Shared bits for the follow-up tests: a small follow-up flow, tokens, reading results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from bot.catalogue import Catalogue
from service.api_tokens import hash_token, new_token
from storage import api_tokens as token_store
from storage.contacts import ContactStore
from storage.db import transaction
from storage.followup_tables import FollowupRow, VisitRow
from storage.tables import MessageRow

SECRET = "test-address-key"

VISIT_FLOW = """\
id: visit-survey
title: {fi: Käyntikysely, sv: Besöksenkät, en: Visit survey}
languages: [fi, sv, en]
default_language: fi
steps:
  - id: rating
    type: scale
    scale: 1-5
    text:
      fi: Miten käyntisi sujui? Vastaa 1-5.
      sv: Hur gick ditt besök? Svara 1-5.
      en: How did your visit go? Reply 1-5.
closing: {fi: Kiitos!, sv: Tack!, en: Thank you!}
followup:
  delay: 2h
  window: {start: "09:00", end: "20:00", days: [mon, tue, wed, thu, fri, sat]}
  reminder_after: 24h
  reminder:
    fi: "Muistutus: kerrotko vielä, miten käyntisi sujui?"
    sv: "Påminnelse: berättar du ännu hur ditt besök gick?"
    en: "Reminder: will you still tell us how your visit went?"
  give_up_after: 3d
  frequency_cap: 30d
"""


def write_flows(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "visit-survey.yaml").write_text(VISIT_FLOW, encoding="utf-8")
    return directory


def catalogue(directory: Path) -> Catalogue:
    return Catalogue.load(write_flows(directory))


def make_token(
    engine: Engine, organisation: str = "Kaarina", name: str = "his", source: str | None = None
) -> str:
    token = new_token()
    with transaction(engine) as session:
        token_store.create_token(
            session, organisation, name, hash_token(token), datetime.now(UTC), source=source
        )
    return token


def followup_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every follow-up with its visit's external id, oldest first."""
    f = FollowupRow.__table__  # type: ignore[attr-defined]
    v = VisitRow.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                v.c.external_id, v.c.source, v.c.contact_id, v.c.language, v.c.timezone,
                v.c.visit_at, f.c.kind, f.c.status, f.c.skip_reason, f.c.due_at, f.c.planned_at,
                f.c.run_id, f.c.sent_at, f.c.id,
            ).join(v, v.c.id == f.c.visit_id).order_by(f.c.id)
        )  # fmt: skip
        return [dict(r._mapping) for r in rows]


def outbox_texts(engine: Engine) -> list[tuple[str, str, str]]:
    """(address, status, text) of every outbound message, in order."""
    m = MessageRow.__table__  # type: ignore[attr-defined]
    contacts = ContactStore(SECRET)
    with transaction(engine) as session:
        rows = session.execute(
            sa.select(m.c.contact_id, m.c.status, m.c.text)
            .where(m.c.direction == "out")
            .order_by(m.c.id)
        ).all()
        addresses = contacts.addresses_of(session, [r.contact_id for r in rows])
    return [(addresses[r.contact_id], r.status, r.text) for r in rows]
