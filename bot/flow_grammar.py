"""The flow grammar: which keys a flow file has, where, and what their values look like.

Each key is defined once, here: its name, the mapping it belongs to (a ``Section``),
whether it is required and the hint when it is missing, and what its value may be (type,
pattern, enum, default and a line of documentation, as a JSON Schema fragment). Two
readers use these definitions: ``bot.flow_loader`` reads flow files by them (allowed and
required keys, the patterns values must match) and ``bot.flow_schema`` writes them out as
the JSON Schema editors use. What a schema cannot say (step references, loops,
translations, SMS length) is checked by ``bot.flow_validate``.

The patterns are Python regular expressions that are also valid ECMA-262 (JSON Schema's
dialect), so that both readers use the same text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.flow import END, OnInvalid, Op, QuietHours, Step, StepKind

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

DEFAULT_SCALE = "1-5"


def ref(name: str) -> dict[str, str]:
    """A JSON Schema reference to one of the value types in ``bot.flow_schema``'s $defs."""
    return {"$ref": f"#/$defs/{name}"}


@dataclass(frozen=True)
class Key:
    """One key of a mapping in a flow file.

    ``value`` is what the value may be, as a JSON Schema fragment (type, pattern, enum,
    default, description); ``missing`` is the hint when a required key is left out.
    """

    name: str
    value: Mapping[str, Any]
    missing: str = ""


@dataclass(frozen=True)
class Section:
    """A mapping in a flow file: its keys in the order the docs list them, and the required."""

    keys: tuple[Key, ...]
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.required) - set(self.names))
        if unknown:
            raise ValueError(f"required keys that are not keys of the section: {unknown}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys)

    def hint(self, name: str) -> str:
        """What to write when ``name`` is missing."""
        key = next((key for key in self.keys if key.name == name), None)
        return key.missing if key is not None and key.missing else f"add `{name}:`"

    def schema(self) -> dict[str, Any]:
        """The mapping as a JSON Schema object that allows no other keys."""
        out: dict[str, Any] = {"type": "object"}
        if self.required:
            out["required"] = list(self.required)
        out["additionalProperties"] = False
        out["properties"] = {key.name: dict(key.value) for key in self.keys}
        return out


def _string(pattern: re.Pattern[str], **more: Any) -> dict[str, Any]:
    return {"type": "string", "pattern": pattern.pattern, **more}


_ID_HINT = "add `id: some-name` (lower-case letters, digits, - and _)"
_SCALAR = {"type": ["integer", "string"]}  # a number or a word (condition values, synonyms)

CODE_ENTRY = Section(
    (
        Key("code", _string(CODE), "add `code: some_code`"),
        Key("service_point", _string(SLUG)),
        Key(
            "language",
            {
                "type": "string",
                "description": "Start in this language (one of "
                "`languages`), whatever the contact used before.",
            },
        ),
    ),
    required=("code",),
)

TRIGGERS = Section(
    (
        Key(
            "keywords",
            {
                **ref("words_per_language"),
                "description": "Whole-message words that start the flow.",
            },
        ),
        Key(
            "codes",
            {
                "type": "array",
                "description": "Start codes for Telegram deep links and QR codes.",
                "items": {"oneOf": [_string(CODE), CODE_ENTRY.schema()]},
            },
        ),
    )
)

WINDOW = Section(
    (
        Key("start", _string(TIME, default=QuietHours.start)),
        Key("end", _string(TIME, default=QuietHours.end)),
        Key("days", {"type": "array", "items": {"enum": list(DAYS)}, "minItems": 1}),
    )
)

FOLLOWUP = Section(
    (
        Key("delay", {**ref("duration"), "default": "2h"}),
        Key("window", WINDOW.schema()),
        Key("reminder_after", ref("duration")),
        Key("reminder", ref("texts")),
        Key("give_up_after", {**ref("duration"), "default": "3d"}),
        Key("frequency_cap", {**ref("duration"), "default": "30d"}),
    )
)

OPTION = Section(
    (
        Key("id", _string(SLUG), _ID_HINT),
        Key("label", ref("texts"), "add `label:` with the option's text per language"),
        Key("synonyms", ref("words_per_language")),
        Key(
            "score",
            {
                "type": ["integer", "null"],
                "description": "Value for reports; null = does not score.",
            },
        ),
    ),
    required=("id", "label"),
)


def _test(op: Op) -> dict[str, Any]:
    """What the operand of one test in a branch's `if` may be."""
    if op in (Op.ANSWERED, Op.SKIPPED):
        return {"type": "boolean"}
    if op in (Op.IN, Op.NOT_IN):
        return {"type": "array", "items": _SCALAR, "minItems": 1}
    return _SCALAR


BRANCH = Section(
    (
        Key(
            "if",
            {
                "type": "object",
                "minProperties": 1,
                "description": "step id: test. All must hold. e.g. {overall: {le: 2}}",
                "additionalProperties": {
                    "oneOf": [
                        _SCALAR,
                        {"type": "array", "items": _SCALAR},
                        {
                            "type": "object",
                            "minProperties": 1,
                            "additionalProperties": False,
                            "properties": {op.value: _test(op) for op in Op},
                        },
                    ]
                },
            },
        ),
        Key(
            "goto",
            {"type": "string", "description": "A step id or `end`."},
            "add `goto: <step id>` (or `goto: end`)",
        ),
    ),
    required=("goto",),
)

STEP = Section(
    (
        Key(
            "id",
            _string(
                SLUG,
                **{
                    "not": {"const": END},
                    "description": "Unique within the flow; used by `next`, `goto` and `if`.",
                },
            ),
            _ID_HINT,
        ),
        Key(
            "type",
            {
                "enum": [kind.value for kind in StepKind],
                "description": "message (no answer), choice, scale, nps (0-10), yes_no, text, "
                "number",
            },
            "add `type:` (message, choice, scale, nps, yes_no, text or number)",
        ),
        Key(
            "text",
            {**ref("texts"), "description": "The question, per language."},
            "add `text:` with the question per language",
        ),
        Key(
            "optional",
            {"type": "boolean", "description": "Citizens may answer SKIP / OHITA / HOPPA ÖVER."},
        ),
        Key(
            "invalid",
            {**ref("texts"), "description": "Re-prompt after a reply not understood."},
        ),
        Key(
            "max_attempts",
            {
                "type": "integer",
                "minimum": 1,
                "description": "Replies not understood before on_invalid applies.",
            },
        ),
        Key(
            "on_invalid",
            {
                "enum": [o.value for o in OnInvalid],
                "description": "skip: go on without an answer; end: close the run.",
            },
        ),
        Key(
            "next",
            {
                "description": "The next step: a step id or `end`, or a list of branches.",
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "items": ref("branch"), "minItems": 1},
                ],
            },
        ),
        Key("metric", _string(SLUG, description="Report name: csat, nps, fft ...")),
        Key("note", {"type": "string", "description": "A note for staff; never sent."}),
        Key(
            "options",
            {"type": "array", "items": ref("option"), "minItems": 2},
            "add `options:` with at least two answers",
        ),
        Key(
            "scale",
            {
                "enum": list(SCALES),
                "default": DEFAULT_SCALE,
                "description": "1-5 (numbers) or smiley-4 / smiley-5 (faces).",
            },
        ),
        Key("max_length", {"type": "integer", "minimum": 1, "default": Step.max_length}),
        Key("min", {"type": "integer"}),
        Key("max", {"type": "integer"}),
    ),
    required=("id", "type", "text"),
)

# Which step keys each type of step takes: message steps only say something; the others
# share the common keys and add their own.
MESSAGE_KEYS = ("id", "type", "text", "next", "note")
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
REQUIRED_BY_KIND: dict[StepKind, tuple[str, ...]] = {StepKind.CHOICE: ("options",)}


def step_keys(kind: StepKind) -> tuple[str, ...]:
    """The keys a step of type ``kind`` may have."""
    return MESSAGE_KEYS if kind is StepKind.MESSAGE else COMMON_STEP_KEYS + KIND_KEYS[kind]


FLOW = Section(
    (
        Key("id", _string(SLUG, description="e.g. library-visit"), _ID_HINT),
        Key(
            "title",
            {**ref("texts"), "description": "Name shown to staff and in menus."},
            "add `title:` with a short name per language (fi: ..., sv: ..., en: ...)",
        ),
        Key("description", {"type": "string", "description": "A note for staff; never sent."}),
        Key(
            "languages",
            {
                "type": "array",
                "items": _string(LANGUAGE),
                "minItems": 1,
                "uniqueItems": True,
                "description": "Every text must exist in each of these, e.g. [fi, sv, en].",
            },
            "add `languages: [fi, sv, en]`",
        ),
        Key(
            "default_language",
            _string(LANGUAGE),
            "add `default_language: fi` (one of `languages`)",
        ),
        Key(
            "service_points",
            {
                "type": "array",
                "items": _string(SLUG),
                "description": "Units results are split by, e.g. kaarina-main-library.",
            },
        ),
        Key("triggers", TRIGGERS.schema()),
        Key("expires_after", {**ref("duration"), "default": "24h"}),
        Key(
            "expired",
            {**ref("texts"), "description": "Sent when someone answers a run that has expired."},
        ),
        Key(
            "closing",
            {**ref("texts"), "description": "Sent when the survey is complete."},
            "add `closing:` with the thank-you message per language",
        ),
        Key("followup", ref("followup")),
        Key(
            "steps",
            {"type": "array", "items": ref("step"), "minItems": 1},
            "add `steps:` with at least one question",
        ),
    ),
    required=("id", "title", "languages", "default_language", "closing", "steps"),
)


def parse_duration(text: str) -> timedelta | None:
    """``"24h"`` -> 24 hours; ``"1d 12h"``, ``"90m"``, ``"2w"``; None when not a duration."""
    if not DURATION.match(text):
        return None
    total = timedelta()
    for amount, unit in DURATION_PART.findall(text):
        total += timedelta(**{DURATION_UNITS[unit]: int(amount)})
    return total
