"""The OpenAPI 3.1 description of ``POST /api/visits``, served at ``GET /api/openapi.json``.

Kept next to the endpoint (``palaute.web.api``) and checked against it: tests validate
this document with openapi-spec-validator and every real response of their requests
against the schema it declares. Prose and examples: docs/visits.md.
"""

from __future__ import annotations

from typing import Any

from service.visits import MAX_TEXT

MAX_BATCH = 1000  # palaute.web.api imports it from here

_TEXT = {"type": ["string", "number", "null"]}  # ids may come as JSON numbers

VISIT: dict[str, Any] = {
    "type": "object",
    "description": "One visit. `external_id` and a visit time (`visit_at`, or "
    "`visit_date` with `visit_time`) are required; `phone` or `telegram_chat_id` says how "
    "to reach the citizen (without either the visit is stored and skipped: `no_channel`). "
    "Other properties are ignored.",
    "properties": {
        "external_id": {
            **_TEXT,
            "maxLength": MAX_TEXT["external_id"],
            "description": "The visit's id in your system; a visit is stored once per "
            "(organisation, source, external_id): resending it is harmless.",
            "examples": ["A-1001"],
        },
        "visit_at": {
            "type": "string",
            "description": "When the visit took place: ISO 8601 with an offset "
            "(`2026-06-02T10:15:00+03:00`, `...Z`) or, with `timezone`, without one; "
            "Finnish `2.6.2026 10.15` is read too.",
            "examples": ["2026-06-02T10:15:00+03:00"],
        },
        "visit_date": {
            "type": "string",
            "description": "Instead of `visit_at`: the date (`2026-06-02` or `2.6.2026`).",
        },
        "visit_time": {
            "type": "string",
            "description": "With `visit_date`: the local time (`10:15` or `10.15`).",
        },
        "timezone": {
            "type": "string",
            "description": "IANA zone of the visit (and of the follow-up's sending window). "
            "Default: the phone number's country, else ORGANISATION_TIMEZONE.",
            "examples": ["Europe/Helsinki"],
        },
        "phone": {
            **_TEXT,
            "description": "Mobile number in any common form (`040 123 4567`, "
            "`+358401234567`); numbers without a country code use PHONE_DEFAULT_REGION. "
            "An invalid number is stored and skipped (`invalid_number`).",
        },
        "telegram_chat_id": {**_TEXT, "description": "Telegram chat id (digits)."},
        "service_point": {
            **_TEXT,
            "maxLength": MAX_TEXT["service_point"],
            "description": "Where the visit took place; picks the flow whose "
            "`service_points` lists it, and is stored with the answers.",
        },
        "language": {
            **_TEXT,
            "description": "The citizen's language: `fi`, `sv`, `en`... (or `suomi`, "
            "`svenska`, `English`).",
        },
        "flow": {
            **_TEXT,
            "maxLength": MAX_TEXT["flow"],
            "description": "The follow-up flow's id. Default: the flow of `service_point`, "
            "else FOLLOWUP_DEFAULT_FLOW, else the only follow-up flow.",
        },
        "source": {
            **_TEXT,
            "maxLength": MAX_TEXT["source"],
            "description": "The sending system (default: the API token's name).",
        },
    },
}

ROW_ERROR = {
    "type": "object",
    "required": ["field", "message"],
    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
    "additionalProperties": False,
}

ROW_RESULT = {
    "type": "object",
    "description": "What became of one visit, in the order they were sent.",
    "required": ["index", "status"],
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "external_id": {"type": "string"},
        "status": {
            "enum": ["scheduled", "skipped", "duplicate", "error"],
            "description": "`scheduled`: a follow-up is due at `due_at`; `skipped`: stored, "
            "but no survey will be sent (`skip_reason`); `duplicate`: this source sent this "
            "id before, nothing changed; `error`: not stored (`errors`), fix and resend.",
        },
        "due_at": {"type": "string", "format": "date-time"},
        "skip_reason": {
            "enum": [
                "opted_out",
                "capped",
                "expired",
                "invalid_number",
                "no_channel",
                "unreachable",
                "answered",
                "flow_removed",
            ]
        },
        "notes": {"type": "array", "items": {"type": "string"}},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/RowError"}},
    },
    "additionalProperties": False,
}

RESULTS = {
    "type": "object",
    "required": ["results", "summary"],
    "properties": {
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/RowResult"}},
        "summary": {
            "type": "object",
            "description": "How many rows got each status.",
            "additionalProperties": {"type": "integer", "minimum": 1},
        },
    },
    "additionalProperties": False,
}

PROBLEM = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "What is wrong and what to do."}},
}


def _json(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict each call)."""
    visits = {"type": "array", "items": {"$ref": "#/components/schemas/Visit"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "palaute visits API",
            "version": "1",
            "description": "Patient and booking systems report visits; palaute sends each "
            "citizen a follow-up survey. See docs/visits.md.",
        },
        "paths": {
            "/api/visits": {
                "post": {
                    "operationId": "postVisits",
                    "summary": "Report visits for follow-up surveys",
                    "security": [{"apiToken": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "anyOf": [
                                        {"$ref": "#/components/schemas/Visit"},
                                        {**visits, "minItems": 1, "maxItems": MAX_BATCH},
                                        {
                                            "type": "object",
                                            "required": ["visits"],
                                            "properties": {
                                                "visits": {
                                                    **visits,
                                                    "minItems": 1,
                                                    "maxItems": MAX_BATCH,
                                                },
                                                "source": {"type": "string"},
                                            },
                                        },
                                    ]
                                },
                                "examples": {
                                    "one": {
                                        "value": {
                                            "external_id": "A-1001",
                                            "visit_at": "2026-06-02T10:15:00+03:00",
                                            "phone": "040 123 4567",
                                            "service_point": "kallio",
                                            "language": "fi",
                                        }
                                    }
                                },
                            }
                        },
                    },
                    "responses": {
                        "200": _json("Results", "Every visit was accepted."),
                        "207": _json("Results", "Some visits have errors; the rest are kept."),
                        "422": _json("Results", "No visit was accepted."),
                        "400": _json("Problem", "The body is not JSON visits."),
                        "401": {
                            **_json("Problem", "No or an unknown/revoked API token."),
                            "headers": {
                                "WWW-Authenticate": {"schema": {"type": "string"}},
                            },
                        },
                        "403": _json(
                            "Problem",
                            "The body or a row names another `source` than the token's; "
                            "nothing was stored.",
                        ),
                        "413": _json(
                            "Problem",
                            f"More than {MAX_BATCH} visits, or a body larger than "
                            "MAX_CONTENT_LENGTH_API: split them.",
                        ),
                        "500": _json("Problem", "Storage error; nothing was stored."),
                        "503": {
                            **_json(
                                "Problem",
                                "The database is busy; nothing was stored: "
                                "send the same request again.",
                            ),
                            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                        },
                    },
                }
            }
        },
        "components": {
            "securitySchemes": {
                "apiToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `palaute api-token create NAME`.",
                }
            },
            "schemas": {
                "Visit": VISIT,
                "RowError": ROW_ERROR,
                "RowResult": ROW_RESULT,
                "Results": RESULTS,
                "Problem": PROBLEM,
            },
        },
    }
