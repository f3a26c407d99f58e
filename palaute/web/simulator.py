"""The browser chat simulator: ``/simulator`` and its small JSON API.

Served only when ``SIMULATOR_ENABLED`` (``enable`` registers it). Every browser is one
simulated contact on the ``simulator`` channel. Its address is a random session the
server issues (256 bits, ``secrets.token_urlsafe(32)``) and keeps in the signed, HttpOnly
Flask session cookie: it is never in a URL, a response body or a log, and a client
cannot choose it (an id the client sends is ignored). The page shows only a short
fingerprint of it. Messages go through the same ``ConversationService`` and storage as
SMS and Telegram, with every reply returned inline. Starts, new contacts and messages are
rate-limited per client address (``SIMULATOR_START_LIMIT``, ``SIMULATOR_MESSAGE_LIMIT``;
Flask-Limiter, counted in each web process's memory).

    GET  /simulator?ui=fi|sv|en         the page (staff UI language; else Accept-Language)
    GET  /simulator/api/flows?ui=fi     flows with titles in the UI language
    POST /simulator/api/start           {"flow", "language" (optional)}
    POST /simulator/api/message         {"text", "kind": "text"|"button", "id"}
    POST /simulator/api/new-contact     forget this browser's contact, issue a new one
    GET  /simulator/api/transcript      this browser's latest run
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from typing import Any

from flask import Blueprint, Flask, jsonify, render_template, request, session, url_for
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from bot.flow import Flow
from bot.texts import LANGUAGE_NAMES, language_name
from channels import simulator as channel
from channels.base import Handled, Rejected
from palaute.config import Settings
from palaute.web import now, services
from palaute.web.json_body import read_json
from palaute.web.limits import decorate_view, limit_view, limiter_of
from service.conversations import Direction
from service.errors import SchemaNotReadyError, StorageError

bp = Blueprint("simulator", __name__, url_prefix="/simulator")
log = logging.getLogger(__name__)

CONTACT_KEY = "simulator_contact"  # in the Flask session
_CONTACT_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # what token_urlsafe(32) gives

UI_LANGUAGES = ("fi", "sv", "en")
DEFAULT_UI = "fi"


UI_TEXTS: dict[str, dict[str, str]] = {
    "fi": {
        "title": "Keskustelusimulaattori",
        "ui_language": "Käyttöliittymän kieli",
        "skip_to_chat": "Siirry keskusteluun",
        "setup_heading": "Valitse kysely",
        "flow": "Kysely",
        "language": "Kysymysten kieli",
        "start": "Aloita",
        "no_flows": "Kyselyitä ei löytynyt. Lisää YAML-kysely kansioon",
        "contact_hint": "Simuloitu yhteystieto tässä selaimessa:",
        "new_contact": "Uusi yhteystieto",
        "chat_heading": "Keskustelu",
        "start_over": "Aloita alusta",
        "conversation": "Keskustelu botin kanssa",
        "empty_chat": "Valitse kysely ja kieli ja paina Aloita, tai kirjoita aloitussana "
        "kuten tekstiviestissä.",
        "answer_options": "Vastausvaihtoehdot",
        "your_message": "Viestisi",
        "type_reply": "Kirjoita vastaus…",
        "send": "Lähetä",
        "stored_heading": "Tallennetut vastaukset",
        "step": "Kysymys",
        "value": "Arvo",
        "raw": "Lähetetty teksti",
        "no_answers": "Ei vielä vastauksia.",
        "noscript": "Simulaattori tarvitsee JavaScriptin.",
        "bot": "Botti",
        "you": "Sinä",
        "skipped": "ohitettu",
        "truncated": "(lyhennetty)",
        "status_active": "käynnissä",
        "status_completed": "valmis",
        "status_expired": "vanhentunut",
        "status_ended": "päättynyt",
        "completed_note": "Kysely on valmis. Vastaukset on tallennettu.",
        "closed_note": "Kysely päättyi kesken.",
        "closed_note_expired": "Kysely vanhentui ennen kuin se valmistui.",
        "closed_note_ended": "Kysely päättyi ennen kuin se valmistui.",
        "error_network": "Palvelimeen ei saatu yhteyttä. Yritä uudelleen.",
        "error_server": "Palvelin ei pystynyt käsittelemään viestiä",
    },
    "sv": {
        "title": "Chattsimulator",
        "ui_language": "Gränssnittets språk",
        "skip_to_chat": "Gå till chatten",
        "setup_heading": "Välj enkät",
        "flow": "Enkät",
        "language": "Frågornas språk",
        "start": "Starta",
        "no_flows": "Inga enkäter hittades. Lägg en YAML-enkät i mappen",
        "contact_hint": "Simulerad kontakt i den här webbläsaren:",
        "new_contact": "Ny kontakt",
        "chat_heading": "Chatt",
        "start_over": "Börja om",
        "conversation": "Chatt med boten",
        "empty_chat": "Välj enkät och språk och tryck på Starta, eller skriv ett startord "
        "som i ett sms.",
        "answer_options": "Svarsalternativ",
        "your_message": "Ditt meddelande",
        "type_reply": "Skriv ett svar…",
        "send": "Skicka",
        "stored_heading": "Sparade svar",
        "step": "Fråga",
        "value": "Värde",
        "raw": "Skickad text",
        "no_answers": "Inga svar ännu.",
        "noscript": "Simulatorn behöver JavaScript.",
        "bot": "Bot",
        "you": "Du",
        "skipped": "hoppades över",
        "truncated": "(förkortad)",
        "status_active": "pågår",
        "status_completed": "klar",
        "status_expired": "gick ut",
        "status_ended": "avslutad",
        "completed_note": "Enkäten är klar. Svaren har sparats.",
        "closed_note": "Enkäten avslutades innan den blev klar.",
        "closed_note_expired": "Enkäten gick ut innan den blev klar.",
        "closed_note_ended": "Enkäten avslutades innan den blev klar.",
        "error_network": "Kunde inte nå servern. Försök igen.",
        "error_server": "Servern kunde inte behandla meddelandet",
    },
    "en": {
        "title": "Chat simulator",
        "ui_language": "Interface language",
        "skip_to_chat": "Skip to the chat",
        "setup_heading": "Choose a survey",
        "flow": "Survey",
        "language": "Survey language",
        "start": "Start",
        "no_flows": "No surveys found. Add a YAML flow to the folder",
        "contact_hint": "Simulated contact in this browser:",
        "new_contact": "New contact",
        "chat_heading": "Chat",
        "start_over": "Start over",
        "conversation": "Chat with the bot",
        "empty_chat": "Choose a survey and a language, then press Start, or type a start "
        "keyword as in a text message.",
        "answer_options": "Answer options",
        "your_message": "Your message",
        "type_reply": "Type a reply…",
        "send": "Send",
        "stored_heading": "Stored answers",
        "step": "Question",
        "value": "Value",
        "raw": "Text sent",
        "no_answers": "No answers yet.",
        "noscript": "The simulator needs JavaScript.",
        "bot": "Bot",
        "you": "You",
        "skipped": "skipped",
        "truncated": "(shortened)",
        "status_active": "in progress",
        "status_completed": "completed",
        "status_expired": "expired",
        "status_ended": "ended",
        "completed_note": "The survey is complete. The answers are stored.",
        "closed_note": "The survey closed before it was complete.",
        "closed_note_expired": "The survey expired before it was complete.",
        "closed_note_ended": "The survey ended before it was complete.",
        "error_network": "Could not reach the server. Try again.",
        "error_server": "The server could not handle the message",
    },
}


class ApiError(Exception):
    """A request the simulator API refuses, with the HTTP status and a readable reason."""

    def __init__(self, status: int, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retryable = retryable


def ui_language() -> str:
    asked = request.args.get("ui", "")
    if asked in UI_LANGUAGES:
        return asked
    return request.accept_languages.best_match(UI_LANGUAGES) or DEFAULT_UI


def flow_view(flow: Flow, ui: str) -> dict[str, Any]:
    return {
        "id": flow.id,
        "title": flow.text(flow.title, ui),
        "default_language": flow.default_language,
        "languages": [{"code": code, "name": language_name(code)} for code in flow.languages],
    }


def flow_views(ui: str) -> list[dict[str, Any]]:
    flows = sorted(services().catalogue.all(), key=lambda flow: flow.text(flow.title, ui).lower())
    return [flow_view(flow, ui) for flow in flows]


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> tuple[Any, int]:
    return jsonify(error=error.message, retryable=error.retryable), error.status


@bp.errorhandler(RateLimitExceeded)
def _rate_limited(error: RateLimitExceeded) -> Any:
    response = jsonify(
        error=f"too many requests from this address ({error.description}); wait a moment "
        "and try again",
        retryable=True,
    )
    response.status_code = 429
    return response


@bp.errorhandler(StorageError)
def _storage_error(error: StorageError) -> tuple[Any, int]:
    # The page is anonymous: the detail (which may name the database server) is logged.
    log.error("simulator: storage error: %s", error)
    if error.retryable:
        return jsonify(error="the database is busy; try again", retryable=True), 503
    if isinstance(error, SchemaNotReadyError):  # names only a table: says what to run
        return jsonify(error=str(error), retryable=False), 500
    return jsonify(error="the database could not store this; see the server log"), 500


@bp.app_errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    """JSON errors for the API (404/405 happen before routing, hence app-wide)."""
    if not request.path.startswith("/simulator/api/"):
        return error  # every other surface keeps Flask's own error pages
    return jsonify(error=error.description, retryable=False), error.code or 500


@bp.get("/")
@bp.get("")  # registered first: url_for gives /simulator
def page() -> str:
    ui = ui_language()
    flows = flow_views(ui)
    container = services()
    page_data = {
        "ui": ui,
        "flows": flows,
        "t": UI_TEXTS[ui],
        "api": {
            "start": url_for("simulator.api_start"),
            "message": url_for("simulator.api_message"),
            "transcript": url_for("simulator.api_transcript"),
            "new_contact": url_for("simulator.api_new_contact"),
        },
    }
    return render_template(
        "simulator.html",
        ui=ui,
        t=UI_TEXTS[ui],
        ui_languages=[(code, LANGUAGE_NAMES[code]) for code in UI_LANGUAGES],
        flows=flows,
        flows_dir=container.settings.flows_dir,
        organisation=container.settings.organisation_name,
        max_text_length=channel.MAX_TEXT_LENGTH,
        page_data=page_data,
        contact=fingerprint(current_contact(issue=True)),
    )


@bp.get("/api/flows")
def api_flows() -> Any:
    return jsonify(flows=flow_views(ui_language()))


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(415, "send the request as JSON (Content-Type: application/json)")
    body: dict[str, Any] = read_json(want_object=True)
    return body


def current_contact(*, issue: bool = False) -> str | None:
    """This browser's simulated contact (its address), from the session cookie; a new
    random one when ``issue`` and the browser has none (or a malformed one)."""
    contact = session.get(CONTACT_KEY)
    if isinstance(contact, str) and _CONTACT_RE.fullmatch(contact):
        return contact
    if not issue:
        return None
    return new_contact()


def new_contact() -> str:
    contact = secrets.token_urlsafe(32)
    session[CONTACT_KEY] = contact
    session.permanent = True  # survives closing the browser, like the old localStorage id
    return contact


def fingerprint(contact: str | None) -> str:
    """A short, non-secret name for a contact, shown on the page to tell contacts apart."""
    if contact is None:
        return ""
    return hashlib.sha256(contact.encode()).hexdigest()[:8]


def _required_contact() -> str:
    contact = current_contact()
    if contact is None:
        raise ApiError(
            400,
            "this browser has no simulated contact yet: reload the page "
            "(the simulator needs cookies)",
        )
    return contact


@bp.post("/api/start")
def api_start() -> Any:
    body = _json_body()
    container = services()
    flow_id = body.get("flow")
    flow = container.catalogue.get(flow_id) if isinstance(flow_id, str) else None
    if flow is None:
        known = ", ".join(sorted(f.id for f in container.catalogue.all())) or "none"
        raise ApiError(404, f"unknown flow {flow_id!r}; known flows: {known}")
    # A language picked at Start wins over the one the contact answered in before;
    # none picked: the remembered one, else the flow's default.
    language = body.get("language") or None
    if language is not None and language not in flow.languages:
        raise ApiError(
            400,
            f"flow {flow.id!r} has no language {language!r}; "
            f"choose one of {', '.join(flow.languages)}",
        )
    contact = current_contact(issue=True)
    assert contact is not None
    result = container.conversations.start(
        channel.CHANNEL, contact, flow.id, now=now(), language=language, inline_limit=None
    )
    return jsonify(
        messages=channel.render_all(result.replies),
        duplicate=result.duplicate,
        run=transcript_view(contact)["run"],
    )


@bp.post("/api/message")
def api_message() -> Any:
    match channel.parse_inbound(_json_body(), _required_contact()):
        case Rejected() as rejected:
            return jsonify(
                error=rejected.reason, field=rejected.field, retryable=rejected.retryable
            ), rejected.status
        case Handled(inbound):
            pass
    container = services()
    result = container.conversations.handle(inbound, now(), inline_limit=None)
    return jsonify(
        messages=channel.render_all(result.replies),
        duplicate=result.duplicate,
        run=transcript_view(inbound.address)["run"],
    )


@bp.post("/api/new-contact")
def api_new_contact() -> Any:
    """Forget this browser's simulated contact and issue a new one (the old one's runs
    stay stored, out of this browser's reach)."""
    return jsonify(contact=fingerprint(new_contact()))


@bp.get("/api/transcript")
def api_transcript() -> Any:
    contact = current_contact()
    if contact is None:
        return jsonify({"messages": [], "run": None})
    return jsonify(transcript_view(contact))


def enable(app: Flask, settings: Settings) -> None:
    """Serve the simulator on ``app``, with its rate limits (SIMULATOR_ENABLED)."""
    from limits import parse_many

    for name, value in (
        ("SIMULATOR_START_LIMIT", settings.simulator_start_limit),
        ("SIMULATOR_MESSAGE_LIMIT", settings.simulator_message_limit),
    ):
        try:
            parse_many(value)
        except ValueError as error:
            raise ValueError(
                f"{name}={value!r} is not a rate limit; write e.g. '10 per minute' "
                f"or '10 per minute;100 per day'"
            ) from error
    app.register_blueprint(bp)
    # The app's one limiter (palaute.web.limits): starts and new contacts share a counter.
    starts = limiter_of(app).shared_limit(settings.simulator_start_limit, scope="simulator-start")
    for endpoint in ("simulator.api_start", "simulator.api_new_contact"):
        decorate_view(app, endpoint, starts)
    limit_view(app, "simulator.api_message", settings.simulator_message_limit)


TRANSCRIPT_LIMIT = 200  # messages shown after a reload


def transcript_view(contact: str) -> dict[str, Any]:
    """The latest run of a simulated contact: its messages, status and stored answers."""
    container = services()
    transcript = container.conversations.transcript(
        channel.CHANNEL, contact, limit=TRANSCRIPT_LIMIT
    )
    run = transcript.run
    if run is None:
        return {"messages": [], "run": None}
    # Only the latest run's conversation (a "start over" begins a fresh chat on the page).
    first = min((m.id for m in transcript.messages if m.run_id == run.id), default=None)
    messages: list[dict[str, Any]] = []
    labels: dict[str, str] = {}
    for logged in transcript.messages:
        if first is None or logged.id < first:
            continue
        if logged.direction is Direction.OUT:
            labels = dict(logged.choices)
            messages.append(
                {
                    "direction": "out",
                    "text": logged.text,
                    "kind": logged.kind,
                    "choices": [{"value": v, "label": label} for v, label in logged.choices],
                }
            )
        else:
            shown = labels.get(logged.text, logged.text) if logged.kind == "button" else None
            messages.append({"direction": "in", "text": shown or logged.text, "kind": logged.kind})
    flow = container.catalogue.get(run.flow_id)
    view = {
        "id": run.id,
        "flow_id": run.flow_id,
        "flow_title": flow.text(flow.title, run.language) if flow else run.flow_id,
        "flow_version": run.flow_version,
        "language": run.language,
        "status": run.status.value,
        "current_step": run.current_step,
        "service_point": run.service_point,
        "answers": [
            {
                "step_id": answer.step_id,
                "question": _question(flow, answer.step_id, run.language),
                "value": answer.value,
                "raw_text": answer.raw_text,
                "language": answer.language,
                "skipped": answer.skipped,
                "truncated": answer.truncated,
                "answered_at": answer.answered_at.isoformat(),
            }
            for answer in transcript.answers
        ],
    }
    return {"messages": messages, "run": view}


def _question(flow: Flow | None, step_id: str, language: str) -> str | None:
    if flow is None or not flow.has_step(step_id):
        return None
    return flow.text(flow.step(step_id).text, language)
