"""A small survey written as YAML (like staff write them), a service factory, and the
differences between a migrated database and the table models."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from bot.catalogue import Catalogue
from bot.messages import Inbound
from service.conversations import ConversationService
from storage.db import make_engine

NOW = datetime(2026, 5, 14, 9, 0, tzinfo=UTC)
SECRET = "test-address-key"

SURVEY_YAML = """\
id: survey
title: {fi: Kysely, sv: Enkät, en: Survey}
languages: [fi, sv, en]
default_language: fi
service_points: [test-library]
triggers:
  keywords:
    fi: [PALAUTE]
    sv: [RESPONS]
    en: [FEEDBACK]
  codes: [survey_code]
expires_after: 24h
steps:
  - id: overall
    type: scale
    scale: 1-5
    text:
      fi: "Miten onnistuimme? Vastaa 1-5."
      sv: "Hur lyckades vi? Svara 1-5."
      en: "How did we do? Reply 1-5."
    max_attempts: 2
    on_invalid: end
    next:
      - if: {overall: {le: 2}}
        goto: wrong
      - goto: liked
  - id: wrong
    type: text
    optional: true
    max_length: 20
    text:
      fi: "Mikä meni pieleen?"
      sv: "Vad gick fel?"
      en: "What went wrong?"
    next: recommend
  - id: liked
    type: text
    optional: true
    max_length: 20
    text:
      fi: "Mistä pidit?"
      sv: "Vad tyckte du om?"
      en: "What did you like?"
  - id: recommend
    type: nps
    text:
      fi: "Suosittelisitko meitä? 0-10"
      sv: "Skulle du rekommendera oss? 0-10"
      en: "Would you recommend us? 0-10"
closing:
  fi: Kiitos!
  sv: Tack!
  en: Thank you!
"""


def write_flow(directory: Path, text: str = SURVEY_YAML, name: str = "survey.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def catalogue_in(directory: Path, text: str = SURVEY_YAML) -> Catalogue:
    write_flow(directory, text)
    return Catalogue.load(directory)


def make_service(engine: Engine, catalogue: Catalogue) -> ConversationService:
    return ConversationService(engine, catalogue, address_key_secret=SECRET)


def sms(address: str, text: str, provider_id: str | None = None) -> Inbound:
    return Inbound(channel="sms", address=address, text=text, provider_id=provider_id)


def schema_diffs(db_url: str, metadata: sa.MetaData) -> list[Any]:
    """Alembic's differences (types compared) between the database at ``db_url``, as the
    migrations made it, and the table models in ``metadata``."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def table_of(diff: Any, unknown: str) -> str:
    """The table a difference is about; ``unknown`` where Alembic's item names none (pass
    a table the caller checks, so that such a difference counts)."""
    item = diff[0] if isinstance(diff, list) else diff
    kind = item[0]
    if kind in ("add_table", "remove_table"):
        return str(item[1].name)
    if kind in ("add_column", "remove_column") or kind.startswith("modify_"):
        return str(item[2])
    table = getattr(item[1], "table", None)
    return str(table.name) if table is not None else unknown
