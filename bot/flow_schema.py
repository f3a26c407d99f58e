"""A JSON Schema (draft 2020-12) for flow files, for editor completion and checks.

Editors with YAML language support (VS Code's YAML extension, JetBrains) offer
completion and hover help from it: add ``# yaml-language-server: $schema=flow.schema.json``
at the top of a flow, after ``palaute flows schema > flow.schema.json``.

The keys, their values and their documentation come from ``bot.flow_grammar``, the same
definitions the reader uses; this module only arranges them as a schema. The schema
describes the shape; ``palaute flows validate`` also checks what a schema cannot (step
references, loops, translations, synonym collisions, SMS length).
"""

from __future__ import annotations

from typing import Any

from bot.flow import StepKind
from bot.flow_grammar import (
    ALL_LANGUAGES,
    BRANCH,
    DURATION,
    FLOW,
    FOLLOWUP,
    LANGUAGE,
    OPTION,
    REQUIRED_BY_KIND,
    STEP,
    ref,
    step_keys,
)

SCHEMA_ID = "https://palaute.example.fi/schemas/flow.schema.json"


def _value_types() -> dict[str, Any]:
    """The value types keys refer to with ``ref(name)``."""
    scalar = {"type": ["integer", "string"]}
    return {
        "texts": {
            "description": "A text per language: fi: ..., sv: ..., en: ...",
            "oneOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "object",
                    "propertyNames": {"pattern": LANGUAGE.pattern},
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
            "description": f"Words per language; `{ALL_LANGUAGES}:` counts in every language.",
            "propertyNames": {"anyOf": [{"pattern": LANGUAGE.pattern}, {"const": ALL_LANGUAGES}]},
            "additionalProperties": ref("words"),
        },
        "duration": {
            "type": "string",
            "pattern": DURATION.pattern,
            "description": "30m, 2h, 24h, 3d, 1w",
        },
    }


def _step_schema() -> dict[str, Any]:
    """A step: every step key, and per type of step which of them it may and must have."""
    properties = {key.name: dict(key.value) for key in STEP.keys}
    rules: list[dict[str, Any]] = []
    for kind in StepKind:
        allowed = step_keys(kind)
        forbidden = [key for key in properties if key not in allowed]
        then: dict[str, Any] = {"not": {"anyOf": [{"required": [k]} for k in forbidden]}}
        if kind in REQUIRED_BY_KIND:
            then["required"] = list(REQUIRED_BY_KIND[kind])
        rules.append({"if": {"properties": {"type": {"const": kind.value}}}, "then": then})
    return {
        "type": "object",
        "description": "One step of the survey.",
        "required": list(STEP.required),
        "properties": properties,
        "additionalProperties": False,
        "allOf": rules,
    }


def flow_schema() -> dict[str, Any]:
    """The schema as a plain dict (``json.dumps`` it)."""
    flow = FLOW.schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "palaute flow",
        "description": "A feedback survey for SMS, Telegram and the simulator (docs/flows.md).",
        "type": "object",
        "required": flow["required"],
        "additionalProperties": False,
        "properties": flow["properties"],
        "$defs": {
            **_value_types(),
            "option": OPTION.schema(),
            "branch": BRANCH.schema(),
            "step": _step_schema(),
            "followup": FOLLOWUP.schema(),
        },
    }
