"""The state of one citizen's pass through a flow, and what it records."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

AnswerValue = int | str | None  # normalised: scale/nps/number -> int, choice -> option id


class RunStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXPIRED = "expired"  # left unanswered past the flow's expiry: incomplete
    ENDED = "ended"  # closed early: too many invalid replies, opt-out, restart


class Event(StrEnum):
    """What a turn did, as reported to the caller (logs, tests, the simulator)."""

    STARTED = "started"  # a run began (its first prompt is sent)
    COMPLETED = "completed"  # the last question was answered: closing message
    ENDED = "ended"  # closed early after too many replies not understood
    EXPIRED = "expired"  # the run was past its expiry when the reply came
    LATE_ANSWER = "late_answer"  # a reply soon after expiry: told the survey closed
    RESTARTED = "restarted"  # a start keyword mid-run: the old run closed, a new one began
    LANGUAGE_CHANGED = "language_changed"
    LANGUAGE_MENU = "language_menu"
    UNSUPPORTED_LANGUAGE = "unsupported_language"  # written in a language the flow lacks
    NO_SURVEY = "no_survey"  # nothing to answer: told how to start one
    UNKNOWN_CODE = "unknown_code"  # a start code no flow has
    HELP = "help"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    IGNORED_OPTED_OUT = "ignored_opted_out"  # a message from an opted-out contact
    SKIPPED_OPTED_OUT = "skipped_opted_out"  # a follow-up not started: the contact opted out


@dataclass(frozen=True)
class RunState:
    """Everything the engine needs to resume a run. Stored as JSON by storage."""

    flow_id: str
    flow_version: str
    language: str
    status: RunStatus
    current_step: str | None  # the question awaiting an answer; None when closed
    attempts: int  # invalid replies to the current step so far
    answers: dict[str, AnswerValue]  # step id -> value, for branching
    skipped: tuple[str, ...]  # steps skipped (optional "skip" or too many invalid replies)
    started_at: datetime
    last_activity_at: datetime
    expires_at: datetime
    service_point: str | None = None

    def with_(self, **changes: Any) -> RunState:
        """A copy with ``changes`` (the engine's hot path: cheaper than dataclasses.replace)."""
        unknown = changes.keys() - _RUN_STATE_FIELDS
        if unknown:
            raise TypeError(f"RunState has no field(s) {sorted(unknown)}")
        copy = object.__new__(RunState)
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(changes)
        return copy

    def to_json(self) -> dict[str, Any]:
        return {
            "flow_id": self.flow_id,
            "flow_version": self.flow_version,
            "language": self.language,
            "status": self.status.value,
            "current_step": self.current_step,
            "attempts": self.attempts,
            "answers": dict(self.answers),
            "skipped": list(self.skipped),
            "started_at": self.started_at.isoformat(),
            "last_activity_at": self.last_activity_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "service_point": self.service_point,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        return cls(
            flow_id=data["flow_id"],
            flow_version=data["flow_version"],
            language=data["language"],
            status=RunStatus(data["status"]),
            current_step=data["current_step"],
            attempts=int(data["attempts"]),
            answers=dict(data["answers"]),
            skipped=tuple(data.get("skipped", ())),
            started_at=datetime.fromisoformat(data["started_at"]),
            last_activity_at=datetime.fromisoformat(data["last_activity_at"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
            service_point=data.get("service_point"),
        )


_RUN_STATE_FIELDS = frozenset(f.name for f in fields(RunState))


@dataclass(frozen=True)
class RecordedAnswer:
    """One answered (or skipped) step, as it is stored for reports."""

    step_id: str
    value: AnswerValue  # normalised; None when skipped
    raw_text: str  # exactly what the citizen sent
    language: str
    answered_at: datetime
    skipped: bool = False
    truncated: bool = False  # a text reply longer than the step's max_length


@dataclass(frozen=True)
class Outcome:
    """What one engine call decided: the new state, messages to send, answers to store."""

    state: RunState
    messages: tuple[Any, ...] = ()  # tuple[bot.messages.Outgoing, ...]
    answers: tuple[RecordedAnswer, ...] = ()
    events: tuple[Event, ...] = field(default=())
