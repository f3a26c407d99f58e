"""The app's long-lived collaborators, built once per app (or per CLI command).

``build_services(settings)`` makes the database engine (no connection yet), loads the
flow catalogue and wires the conversation service. Flask blueprints reach it through
``palaute.web.services()``; CLI commands call ``build_services`` themselves. Channel
senders (Twilio, Telegram) are added here as fields by their modules' owners.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from bot import language
from bot.flow_loader import Catalogue
from palaute.config import Settings
from service.conversations import ConversationService
from storage.db import make_engine

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Engine
    catalogue: Catalogue
    conversations: ConversationService
    # Slow, optional preparations (language detectors...) run once after start-up.
    warm_ups: list[Callable[[], None]] = field(default_factory=list)
    # The Telegram worker's Bot API client (one event loop for its life), made on first use
    # by palaute.telegram_outbox.telegram_sender(); never used by web requests.
    telegram_sender: Any = None

    def warm_up(self) -> None:
        """Run every warm-up hook; a failing hook is logged, never fatal."""
        for hook in self.warm_ups:
            try:
                hook()
            except Exception:  # a warm-up only saves time later; the first use retries
                log.exception("warm-up %r failed; it will happen on first use instead", hook)

    def warm_up_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.warm_up, name="palaute-warm-up", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        if self.telegram_sender is not None:
            self.telegram_sender.close()
        self.db.dispose()


def language_warm_up(catalogue: Catalogue) -> Callable[[], None]:
    """Build the language detectors every loaded flow's language set will use."""

    def warm() -> None:
        for languages in sorted({tuple(sorted(flow.languages)) for flow in catalogue.all()}):
            language.warm(languages)

    return warm


def build_services(settings: Settings, *, catalogue: Catalogue | None = None) -> Services:
    """Everything a request or a command needs. Connects to nothing yet."""
    # A long-running app: SQLite's WAL checkpoints (and their fsyncs) run in a background
    # thread instead of inside whichever request's commit crosses the threshold.
    db = make_engine(settings.database_url, background_checkpoints=True)
    flows = catalogue if catalogue is not None else Catalogue.load(settings.flows_dir)
    conversations = ConversationService(
        db,
        flows,
        address_key_secret=settings.address_key_secret,
        organisation=settings.organisation_name,
        organisation_contact=settings.organisation_contact,
    )
    return Services(
        settings=settings,
        db=db,
        catalogue=flows,
        conversations=conversations,
        warm_ups=[language_warm_up(flows)],
    )
