"""The flow grammar: which keys a flow file has, where, and what their values look like.

``bot.flow_loader`` reads flow files by it: the keys allowed and required in each
mapping, the patterns values must match, the durations.
"""

from __future__ import annotations

import re
from datetime import timedelta

from bot.flow import StepKind

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?$")
CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # Telegram deep-link start parameter
TIME = re.compile(r"^(?:[01]?[0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|min|m|s)")
DURATION = re.compile(r"^\s*(?:\d+\s*(?:w|d|h|min|m|s)\s*)+$")
DURATION_UNITS = {
    "w": "weeks",
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "m": "minutes",
    "s": "seconds",
}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCALES = ("1-5", "1-4", "1-3", "1-7", "1-10", "0-10", "smiley-4", "smiley-5")
ALL_LANGUAGES = "all"  # synonyms/keywords under `all:` count in every language

TOP_KEYS = (
    "id", "title", "description", "languages", "default_language", "service_points",
    "triggers", "expires_after", "expired", "closing", "followup", "steps",
)  # fmt: skip
TOP_REQUIRED = ("id", "title", "languages", "default_language", "closing", "steps")
COMMON_STEP_KEYS = (
    "id", "type", "text", "optional", "invalid", "max_attempts", "on_invalid", "next",
    "metric", "note",
)  # fmt: skip
KIND_KEYS: dict[StepKind, tuple[str, ...]] = {
    StepKind.MESSAGE: (),
    StepKind.CHOICE: ("options",),
    StepKind.SCALE: ("scale",),
    StepKind.NPS: (),
    StepKind.YES_NO: (),
    StepKind.TEXT: ("max_length",),
    StepKind.NUMBER: ("min", "max"),
}
MESSAGE_KEYS = ("id", "type", "text", "next", "note")
ALL_STEP_KEYS = tuple(dict.fromkeys(COMMON_STEP_KEYS + sum(KIND_KEYS.values(), ())))
OPTION_KEYS = ("id", "label", "synonyms", "score")
BRANCH_KEYS = ("if", "goto")
TRIGGER_KEYS = ("keywords", "codes")
CODE_KEYS = ("code", "service_point")
FOLLOWUP_KEYS = ("delay", "window", "reminder_after", "reminder", "give_up_after", "frequency_cap")
WINDOW_KEYS = ("start", "end", "days")

KEY_HINTS = {
    "id": "add `id: some-name` (lower-case letters, digits, - and _)",
    "title": "add `title:` with a short name per language (fi: ..., sv: ..., en: ...)",
    "languages": "add `languages: [fi, sv, en]`",
    "default_language": "add `default_language: fi` (one of `languages`)",
    "closing": "add `closing:` with the thank-you message per language",
    "steps": "add `steps:` with at least one question",
    "type": "add `type:` (message, choice, scale, nps, yes_no, text or number)",
    "text": "add `text:` with the question per language",
    "options": "add `options:` with at least two answers",
    "label": "add `label:` with the option's text per language",
    "goto": "add `goto: <step id>` (or `goto: end`)",
    "code": "add `code: some_code`",
}


def parse_duration(text: str) -> timedelta | None:
    """``"24h"`` -> 24 hours; ``"1d 12h"``, ``"90m"``, ``"2w"``; None when not a duration."""
    if not DURATION.match(text):
        return None
    total = timedelta()
    for amount, unit in DURATION_PART.findall(text):
        total += timedelta(**{DURATION_UNITS[unit]: int(amount)})
    return total
