"""Flask blueprints, one per surface. Each reads the app's ``Services`` and clock from here."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from palaute.services import Services

EXTENSION_KEY = "palaute"


def services() -> Services:
    """The container ``create_app`` built for the current app."""
    container: Services = current_app.extensions[EXTENSION_KEY]
    return container


def now() -> datetime:
    """The current time for request handling (tests set ``CLOCK`` in the app config)."""
    clock = current_app.config["CLOCK"]
    value: datetime = clock()
    return value
