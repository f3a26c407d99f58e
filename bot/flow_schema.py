"""A JSON Schema (draft 2020-12) for flow files, for editor completion and checks.

Editors with YAML language support (VS Code's YAML extension, JetBrains) offer
completion and hover help from it: add ``# yaml-language-server: $schema=flow.schema.json``
at the top of a flow, after ``palaute flows schema > flow.schema.json``.

The schema describes the shape; ``palaute flows validate`` also checks what a schema
cannot (step references, loops, translations, synonym collisions, SMS length).
"""

from __future__ import annotations

from typing import Any

from bot.flow import OnInvalid, Op, StepKind

SCHEMA_ID = "https://palaute.example.fi/schemas/flow.schema.json"
SLUG = "^[a-z0-9][a-z0-9_-]*$"
LANGUAGE = "^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?$"
DURATION = r"^\s*(?:\d+\s*(?:w|d|h|min|m|s)\s*)+$"
TIME = "^(?:[01]?[0-9]|2[0-3]):[0-5][0-9]$|^24:00$"
SCALES = ["1-5", "1-4", "1-3", "1-7", "1-10", "0-10", "smiley-4", "smiley-5"]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

_COMMON_STEP = [
    "id", "type", "text", "optional", "invalid", "max_attempts", "on_invalid", "next",
    "metric", "note",
]  # fmt: skip
_KIND_KEYS = {
    StepKind.MESSAGE: [],
    StepKind.CHOICE: ["options"],
    StepKind.SCALE: ["scale"],
    StepKind.NPS: [],
    StepKind.YES_NO: [],
    StepKind.TEXT: ["max_length"],
    StepKind.NUMBER: ["min", "max"],
}
_MESSAGE_KEYS = ["id", "type", "text", "next", "note"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def _step_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "id": {
            "type": "string",
            "pattern": SLUG,
            "not": {"const": "end"},
            "description": "Unique within the flow; used by `next`, `goto` and `if`.",
        },
        "type": {
            "enum": [kind.value for kind in StepKind],
            "description": "message (no answer), choice, scale, nps (0-10), yes_no, text, number",
        },
        "text": {**_ref("texts"), "description": "The question, per language."},
        "optional": {
            "type": "boolean",
            "description": "Citizens may answer SKIP / OHITA / HOPPA ÖVER.",
        },
        "invalid": {**_ref("texts"), "description": "Re-prompt after a reply not understood."},
        "max_attempts": {
            "type": "integer",
            "minimum": 1,
            "description": "Replies not understood before on_invalid applies.",
        },
        "on_invalid": {
            "enum": [o.value for o in OnInvalid],
            "description": "skip: go on without an answer; end: close the run.",
        },
        "next": {
            "description": "The next step: a step id or `end`, or a list of branches.",
            "oneOf": [
                {"type": "string"},
                {"type": "array", "items": _ref("branch"), "minItems": 1},
            ],
        },
        "metric": {
            "type": "string",
            "pattern": SLUG,
            "description": "Report name: csat, nps, fft ...",
        },
        "note": {"type": "string", "description": "A note for staff; never sent."},
        "options": {"type": "array", "items": _ref("option"), "minItems": 2},
        "scale": {
            "enum": SCALES,
            "default": "1-5",
            "description": "1-5 (numbers) or smiley-4 / smiley-5 (faces).",
        },
        "max_length": {"type": "integer", "minimum": 1, "default": 1000},
        "min": {"type": "integer"},
        "max": {"type": "integer"},
    }
    rules: list[dict[str, Any]] = []
    for kind, extra in _KIND_KEYS.items():
        allowed = _MESSAGE_KEYS if kind is StepKind.MESSAGE else _COMMON_STEP + extra
        forbidden = [key for key in properties if key not in allowed]
        then: dict[str, Any] = {"not": {"anyOf": [{"required": [k]} for k in forbidden]}}
        if kind is StepKind.CHOICE:
            then["required"] = ["options"]
        rules.append({"if": {"properties": {"type": {"const": kind.value}}}, "then": then})
    return {
        "type": "object",
        "description": "One step of the survey.",
        "required": ["id", "type", "text"],
        "properties": properties,
        "additionalProperties": False,
        "allOf": rules,
    }


def flow_schema() -> dict[str, Any]:
    """The schema as a plain dict (``json.dumps`` it)."""
    scalar = {"type": ["integer", "string"]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "palaute flow",
        "description": "A feedback survey for SMS, Telegram and the simulator (docs/flows.md).",
        "type": "object",
        "required": ["id", "title", "languages", "default_language", "steps", "closing"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": SLUG, "description": "e.g. library-visit"},
            "title": {**_ref("texts"), "description": "Name shown to staff and in menus."},
            "description": {"type": "string", "description": "A note for staff; never sent."},
            "languages": {
                "type": "array",
                "items": {"type": "string", "pattern": LANGUAGE},
                "minItems": 1,
                "uniqueItems": True,
                "description": "Every text must exist in each of these, e.g. [fi, sv, en].",
            },
            "default_language": {"type": "string", "pattern": LANGUAGE},
            "service_points": {
                "type": "array",
                "items": {"type": "string", "pattern": SLUG},
                "description": "Units results are split by, e.g. kaarina-main-library.",
            },
            "triggers": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "keywords": {
                        **_ref("words_per_language"),
                        "description": "Whole-message words that start the flow.",
                    },
                    "codes": {
                        "type": "array",
                        "description": "Start codes for Telegram deep links and QR codes.",
                        "items": {
                            "oneOf": [
                                {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                                {
                                    "type": "object",
                                    "required": ["code"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "code": {
                                            "type": "string",
                                            "pattern": "^[A-Za-z0-9_-]{1,64}$",
                                        },
                                        "service_point": {"type": "string", "pattern": SLUG},
                                        "language": {
                                            "type": "string",
                                            "description": "Start in this language (one of "
                                            "`languages`), whatever the contact used before.",
                                        },
                                    },
                                },
                            ]
                        },
                    },
                },
            },
            "expires_after": {**_ref("duration"), "default": "24h"},
            "expired": {
                **_ref("texts"),
                "description": "Sent when someone answers a run that has expired.",
            },
            "closing": {**_ref("texts"), "description": "Sent when the survey is complete."},
            "followup": _ref("followup"),
            "steps": {"type": "array", "items": _ref("step"), "minItems": 1},
        },
        "$defs": {
            "texts": {
                "description": "A text per language: fi: ..., sv: ..., en: ...",
                "oneOf": [
                    {"type": "string", "minLength": 1},
                    {
                        "type": "object",
                        "propertyNames": {"pattern": LANGUAGE},
                        "additionalProperties": {"type": "string", "minLength": 1},
                        "minProperties": 1,
                    },
                ],
            },
            "words": {
                "oneOf": [scalar, {"type": "array", "items": scalar}],
            },
            "words_per_language": {
                "type": "object",
                "description": "Words per language; `all:` counts in every language.",
                "propertyNames": {"anyOf": [{"pattern": LANGUAGE}, {"const": "all"}]},
                "additionalProperties": _ref("words"),
            },
            "duration": {
                "type": "string",
                "pattern": DURATION,
                "description": "30m, 2h, 24h, 3d, 1w",
            },
            "option": {
                "type": "object",
                "required": ["id", "label"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": SLUG},
                    "label": _ref("texts"),
                    "synonyms": _ref("words_per_language"),
                    "score": {
                        "type": ["integer", "null"],
                        "description": "Value for reports; null = does not score.",
                    },
                },
            },
            "branch": {
                "type": "object",
                "required": ["goto"],
                "additionalProperties": False,
                "properties": {
                    "if": {
                        "type": "object",
                        "minProperties": 1,
                        "description": "step id: test. All must hold. e.g. {overall: {le: 2}}",
                        "additionalProperties": {
                            "oneOf": [
                                scalar,
                                {"type": "array", "items": scalar},
                                {
                                    "type": "object",
                                    "minProperties": 1,
                                    "additionalProperties": False,
                                    "properties": {
                                        op.value: (
                                            {"type": "boolean"}
                                            if op in (Op.ANSWERED, Op.SKIPPED)
                                            else {"type": "array", "items": scalar, "minItems": 1}
                                            if op in (Op.IN, Op.NOT_IN)
                                            else scalar
                                        )
                                        for op in Op
                                    },
                                },
                            ]
                        },
                    },
                    "goto": {"type": "string", "description": "A step id or `end`."},
                },
            },
            "step": _step_schema(),
            "followup": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "delay": {**_ref("duration"), "default": "2h"},
                    "window": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "start": {"type": "string", "pattern": TIME, "default": "09:00"},
                            "end": {"type": "string", "pattern": TIME, "default": "20:00"},
                            "days": {"type": "array", "items": {"enum": DAYS}, "minItems": 1},
                        },
                    },
                    "reminder_after": _ref("duration"),
                    "reminder": _ref("texts"),
                    "give_up_after": {**_ref("duration"), "default": "3d"},
                    "frequency_cap": {**_ref("duration"), "default": "30d"},
                },
            },
        },
    }
