"""One conversational turn: routing, opt-out, help, language and the flow engine together.

``converse`` is pure: the caller (palaute/conversations.py) loads the contact and the
active run, calls it, and stores what the returned ``Turn`` says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.flow import Flow
from bot.messages import Inbound, Outgoing
from bot.run import RecordedAnswer, RunState


class FlowCatalogue(Protocol):
    """The current flows (bot.flow_loader.Catalogue implements this)."""

    def get(self, flow_id: str) -> Flow | None: ...
    def by_keyword(self, text: str) -> Flow | None: ...
    def by_code(self, code: str) -> tuple[Flow, str | None] | None: ...
    def all(self) -> tuple[Flow, ...]: ...


@dataclass(frozen=True)
class Contact:
    """What the core knows about the person on the other end."""

    channel: str
    language: str | None = None  # sticky preferred language
    opted_out: bool = False
    country_language: str | None = None  # prior from the phone number's country


@dataclass(frozen=True)
class OptEvent:
    action: str  # "out" or "in"
    via: str  # "keyword", "provider" (Twilio OptOutType), "command" (/stop), "blocked"
    keyword: str  # what the citizen sent


@dataclass(frozen=True)
class Turn:
    contact: Contact  # possibly updated: language, opted_out
    run: RunState | None  # the run after this turn (new or updated); None: no run involved
    closed: tuple[RunState, ...] = ()  # other runs this turn closed (replaced by a new start)
    messages: tuple[Outgoing, ...] = ()
    answers: tuple[RecordedAnswer, ...] = ()
    events: tuple[str, ...] = field(default=())
    opt_event: OptEvent | None = None
