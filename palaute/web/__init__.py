"""Flask blueprints, one per surface. Each reads the app's ``Services`` and clock from here."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app

from palaute.services import Services
from service.errors import StorageError

EXTENSION_KEY = "palaute"

log = logging.getLogger(__name__)


def services() -> Services:
    """The container ``create_app`` built for the current app."""
    container: Services = current_app.extensions[EXTENSION_KEY]
    return container


def now() -> datetime:
    """The current time for request handling (tests set ``CLOCK`` in the app config)."""
    clock = current_app.config["CLOCK"]
    value: datetime = clock()
    return value


def unstored(what: str, error: StorageError) -> tuple[int, dict[str, str]]:
    """The status (and headers) for a webhook whose content could not be stored.

    Never 2xx: the provider would take the message as delivered and it would be lost.
    A busy database gets 503 with ``Retry-After`` (the provider resends, or Twilio goes
    to the fallback URL); anything else (e.g. an unmigrated database) 500. Logged here,
    once, with the reason. ``what`` names the request in the log, e.g. the message id.
    """
    if error.retryable:
        log.warning("%s: nothing stored, the database is busy (%s); answered 503", what, error)
        return 503, {"Retry-After": "1"}
    log.error("%s: nothing stored (%s); answered 500", what, error)
    return 500, {}
