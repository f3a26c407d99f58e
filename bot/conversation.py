"""One conversational turn: routing, opt-out, help, language and the flow engine together.

``converse`` is pure: the caller (service/conversations.py) loads the contact and the
active run, calls it, and stores what the returned ``Turn`` says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from bot import engine, keywords
from bot.engine import EngineError
from bot.flow import Flow
from bot.language import (
    LanguageDetector,
    decide_language,
    explicit_request,
    normalize_code,
    prior_language,
)
from bot.messages import Choice, Inbound, InboundKind, Outgoing, OutgoingKind
from bot.replies import parse_reply
from bot.run import Event, Outcome, RecordedAnswer, RunState, RunStatus
from bot.texts import has_system_language, language_name, system_text


class FlowCatalogue(Protocol):
    """The current flows (bot.catalogue.Catalogue implements this)."""

    def get(self, flow_id: str) -> Flow | None: ...
    def by_keyword(self, text: str) -> Flow | None: ...
    def by_code(self, code: str) -> tuple[Flow, str | None] | None: ...
    def typed_code(self, text: str) -> str | None: ...
    def all(self) -> tuple[Flow, ...]: ...
    def text_of(self, flow: Flow) -> str | None: ...  # the YAML text it was loaded from


@dataclass(frozen=True)
class Contact:
    """What the core knows about the person on the other end."""

    channel: str
    language: str | None = None  # sticky preferred language
    opted_out: bool = False
    country_language: str | None = None  # prior from the phone number's country


class OptAction(StrEnum):
    OUT = "out"
    IN = "in"


class OptVia(StrEnum):
    """How an opt-out or opt-in came about (stored as this text in opt_events.via)."""

    KEYWORD = "keyword"  # the citizen sent STOP, LOPETA, /stop, START ...
    PROVIDER = "provider"  # the provider flagged it (Twilio OptOutType) or refused to deliver
    CORE = "core"  # the contact changed without an event (stored by the caller)


@dataclass(frozen=True)
class OptEvent:
    action: OptAction
    via: OptVia
    keyword: str  # what the citizen sent


@dataclass(frozen=True)
class Turn:
    contact: Contact  # possibly updated: language, opted_out
    run: RunState | None  # the run after this turn (new or updated); None: no run involved
    closed: tuple[RunState, ...] = ()  # other runs this turn closed (replaced by a new start)
    messages: tuple[Outgoing, ...] = ()
    answers: tuple[RecordedAnswer, ...] = ()
    events: tuple[Event, ...] = field(default=())
    opt_event: OptEvent | None = None


# Languages used for messages when nothing better is known.
_FALLBACK_LANGUAGE = "fi"


def converse(
    catalogue: FlowCatalogue,
    contact: Contact,
    run: RunState | None,
    run_flow: Flow | None,
    inbound: Inbound,
    now: datetime,
    *,
    detector: LanguageDetector | None = None,
    organisation: str = "",
    organisation_contact: str = "",
    lapsed: Callable[[], tuple[RunState, Flow] | None] | None = None,
) -> Turn:
    """Handle one citizen message: keywords first, then the active run, else routing.

    ``run`` is the contact's active run (if any) and ``run_flow`` the flow version it is
    pinned to. ``detector`` is the language detector port (bot.language). ``lapsed`` is
    asked, only when there is no active run and the message starts nothing, for the
    contact's latest run and its flow: an answer to a run closed as expired (by the
    expiry sweep) gets the flow's ``expired:`` text, like an answer that arrives after
    the expiry while the run is still open.
    """
    if run is not None and (run.status is not RunStatus.ACTIVE or run_flow is None):
        raise EngineError("converse needs the active run together with its pinned flow")
    text = inbound.text
    talk = _Talk(catalogue, contact, run, run_flow, inbound, now, detector)

    typed = inbound.kind is InboundKind.TEXT
    flagged = inbound.provider_keyword
    if flagged == "STOP" or (flagged is None and typed and keywords.is_opt_out(text)):
        return talk.opt_out(via=OptVia.PROVIDER if flagged else OptVia.KEYWORD)
    opt_in = flagged == "START" or (flagged is None and typed and keywords.is_opt_in(text))
    if opt_in and contact.opted_out:
        return talk.opt_in(via=OptVia.PROVIDER if flagged else OptVia.KEYWORD)
    if flagged == "HELP" or (flagged is None and typed and keywords.is_help(text)):
        return talk.help(organisation, organisation_contact)
    if contact.opted_out:
        # Nothing is sent to an opted-out contact until it opts in again.
        return Turn(contact=contact, run=None, events=(Event.IGNORED_OPTED_OUT,))
    if opt_in:
        return talk.opt_in(via=OptVia.PROVIDER if flagged else OptVia.KEYWORD)
    if inbound.kind is InboundKind.START or keywords.normalise(text) == "/start":
        return talk.start_code(inbound.start_code)
    typed_code = catalogue.typed_code(text) if typed else None
    if typed_code is not None:  # a start code sent as a message (SMS posters): like /start
        return talk.start_code(typed_code)
    if inbound.kind is not InboundKind.BUTTON and keywords.is_language_menu(text):
        return talk.language_menu()

    if run is not None and run_flow is not None:
        expired = engine.expire(run_flow, run, now)
        if expired is None:
            return talk.continue_run(run, run_flow)
        talk.closed.append(expired.state)
        talk.events.extend(expired.events)
        talk.run = None
        flow = catalogue.by_keyword(keywords.normalise(text))
        if flow is None:
            return talk.too_late(run, run_flow)
        return talk.start_flow(flow, keyword=text)

    flow = (
        catalogue.by_keyword(keywords.normalise(text)) if inbound.kind is InboundKind.TEXT else None
    )
    if flow is not None:
        return talk.start_flow(flow, keyword=text)
    if lapsed is not None and inbound.kind in (InboundKind.TEXT, InboundKind.BUTTON):
        latest = lapsed()
        if latest is not None and answers_lapsed_run(latest[0], latest[1], now):
            talk.events.append(Event.LATE_ANSWER)
            return talk.too_late(*latest)
    return talk.no_survey()


def answers_lapsed_run(state: RunState, flow: Flow, now: datetime) -> bool:
    """Whether a message now, with no run open, is taken as a late answer to ``state``:
    it was closed as expired (unanswered past its expiry) no longer ago than the flow's
    ``expires_after``. Later than that the person is simply offered the surveys."""
    return state.status is RunStatus.EXPIRED and now < state.expires_at + flow.expires_after


def start_run(
    catalogue: FlowCatalogue,
    contact: Contact,
    flow_id: str,
    *,
    run: RunState | None,
    run_flow: Flow | None,
    now: datetime,
    language: str | None = None,
    visit_language: str | None = None,
    service_point: str | None = None,
) -> Turn:
    """Start ``flow_id`` for a contact on our initiative (a follow-up, the simulator).

    ``language`` is a language chosen explicitly for this start (the simulator's Start,
    ``palaute chat --lang``): it wins over the contact's remembered language when the flow
    has it. ``visit_language`` (a follow-up's visit) is only a prior: the remembered
    language wins over it. An active run is closed first. Nothing starts for an opted-out
    contact.
    """
    flow = catalogue.get(flow_id)
    if flow is None:
        raise EngineError(f"no flow {flow_id!r}")
    if contact.opted_out:
        return Turn(contact=contact, run=None, events=(Event.SKIPPED_OPTED_OUT,))
    inbound = Inbound(channel=contact.channel, address="", text="", kind=InboundKind.START)
    talk = _Talk(catalogue, contact, run, run_flow, inbound, now, None)
    return talk.start_flow(
        flow, service_point=service_point, visit_language=visit_language, chosen_language=language
    )


class _Talk:
    """The working state of one turn; each public method returns the finished Turn."""

    def __init__(
        self,
        catalogue: FlowCatalogue,
        contact: Contact,
        run: RunState | None,
        run_flow: Flow | None,
        inbound: Inbound,
        now: datetime,
        detector: LanguageDetector | None,
    ) -> None:
        self.catalogue = catalogue
        self.contact = contact
        self.run = run
        self.run_flow = run_flow
        self.inbound = inbound
        self.now = now
        self.detector = detector
        self.closed: list[RunState] = []
        self.events: list[Event] = []
        self.answers: list[RecordedAnswer] = []

    # --- helpers ---------------------------------------------------------------------------

    def language(self) -> str:
        """The language for messages outside a flow's own texts."""
        if self.run is not None:
            return self.run.language
        hint = normalize_code(self.inbound.language_hint)
        for candidate in (self.contact.language, hint, self.contact.country_language):
            if candidate and has_system_language(candidate):
                return candidate
        flows = self.catalogue.all()
        return flows[0].default_language if flows else _FALLBACK_LANGUAGE

    def finish(
        self,
        run: RunState | None,
        messages: list[Outgoing],
        *,
        contact: Contact | None = None,
        opt_event: OptEvent | None = None,
    ) -> Turn:
        contact = contact or self.contact
        if (
            run is not None
            and contact.language != run.language
            and Event.STARTED not in self.events
        ):
            contact = replace(contact, language=run.language)
        return Turn(
            contact=contact,
            run=run,
            closed=tuple(self.closed),
            messages=tuple(messages),
            answers=tuple(self.answers),
            events=tuple(self.events),
            opt_event=opt_event,
        )

    def close_active(self) -> None:
        if self.run is not None:
            self.closed.append(engine.abandon(self.run, self.now))
            self.run = None

    def flow_menu(self, language: str) -> tuple[Choice, ...]:
        """One button per flow that has a start keyword: the value is that keyword."""
        menu: dict[str, Choice] = {}
        for flow in self.catalogue.all():
            for_language = flow.triggers.keywords.get(language) or next(
                iter(flow.triggers.keywords.values()), ()
            )
            if for_language and for_language[0].upper() not in menu:
                keyword = for_language[0].upper()
                menu[keyword] = Choice(value=keyword, label=flow.text(flow.title, language))
        return tuple(menu.values())

    def keywords_text(self, language: str) -> str:
        return " / ".join(choice.value for choice in self.flow_menu(language))

    # --- keywords ----------------------------------------------------------------------------

    def keyword_reply_language(self) -> str:
        """A local keyword ("HJÄLP", "LOPETA") is answered in its own language."""
        local = keywords.keyword_language(self.inbound.text)
        return local if local is not None else self.language()

    def opt_out(self, via: OptVia) -> Turn:
        language = self.keyword_reply_language()
        self.close_active()
        self.events.append(Event.OPTED_OUT)
        contact = replace(self.contact, opted_out=True)
        event = OptEvent(action=OptAction.OUT, via=via, keyword=self.inbound.text.strip()[:64])
        message = _info(system_text("opted_out", language), language)
        return self.finish(None, [message], contact=contact, opt_event=event)

    def opt_in(self, via: OptVia) -> Turn:
        language = self.keyword_reply_language()
        self.events.append(Event.OPTED_IN)
        contact = replace(self.contact, opted_out=False)
        event = OptEvent(action=OptAction.IN, via=via, keyword=self.inbound.text.strip()[:64])
        message = _info(system_text("opted_in", language), language)
        return self.finish(self.run, [message], contact=contact, opt_event=event)

    def help(self, organisation: str, organisation_contact: str) -> Turn:
        language = self.keyword_reply_language()
        self.events.append(Event.HELP)
        contact_part = f" {organisation_contact}." if organisation_contact else ""
        text = system_text(
            "help", language, organisation=organisation or "Palaute", contact=contact_part
        )
        messages = [_info(text, language, choices=self.language_choices())]
        if self.run is not None and self.run_flow is not None and not self.contact.opted_out:
            messages.extend(engine.reask(self.run_flow, self.run).messages)
        return self.finish(self.run, messages)

    def language_choices(self) -> tuple[Choice, ...]:
        if self.run_flow is not None:
            languages: tuple[str, ...] = self.run_flow.languages
        else:
            seen: dict[str, None] = {}
            for flow in self.catalogue.all():
                seen.update(dict.fromkeys(flow.languages))
            languages = tuple(seen) or ("fi", "sv", "en")
        return tuple(Choice(value=code.upper(), label=language_name(code)) for code in languages)

    def language_menu(self) -> Turn:
        language = self.language()
        self.events.append(Event.LANGUAGE_MENU)
        choices = self.language_choices()
        listing = ", ".join(f"{c.value} {c.label}" for c in choices)
        text = system_text("language_menu", language, choices=listing)
        return self.finish(self.run, [_info(text, language, choices=choices)])

    def start_code(self, code: str | None) -> Turn:
        found = self.catalogue.by_code(code) if code else None
        if found is None:
            language = self.language()
            event = Event.UNKNOWN_CODE if code else Event.NO_SURVEY
            self.events.append(event)
            text = system_text(event.value, language, keywords=self.keywords_text(language))
            menu = self.flow_menu(language)
            return self.finish(self.run, [_info(text, language, choices=menu)])
        flow, service_point = found
        # A code that names a language (a poster in Swedish) is an explicit choice.
        chosen = flow.triggers.code_languages.get(code.strip()) if code else None
        return self.start_flow(flow, service_point=service_point, chosen_language=chosen)

    def too_late(self, run: RunState, run_flow: Flow) -> Turn:
        """The answer came after ``run`` expired: the flow's ``expired:`` text (or the
        system's), in the run's language."""
        language = run.language
        message = run_flow.text(run_flow.expired, language) if run_flow.expired else None
        return self.finish(None, [_info(message or system_text("expired", language), language)])

    def no_survey(self) -> Turn:
        language = self.language()
        asked = explicit_request(self.inbound.text)
        contact = self.contact
        if asked is not None and has_system_language(asked):
            language = asked
            contact = replace(contact, language=asked)
            self.events.append(Event.LANGUAGE_CHANGED)
        self.events.append(Event.NO_SURVEY)
        menu = self.flow_menu(language)
        if menu:
            keywords_text = " / ".join(choice.value for choice in menu)
            text = system_text("no_survey", language, keywords=keywords_text)
        else:
            text = system_text("no_survey_without_keywords", language)
        return self.finish(None, [_info(text, language, choices=menu)], contact=contact)

    # --- runs --------------------------------------------------------------------------------

    def start_flow(
        self,
        flow: Flow,
        *,
        keyword: str | None = None,
        service_point: str | None = None,
        visit_language: str | None = None,
        chosen_language: str | None = None,
    ) -> Turn:
        """Start ``flow``, closing any active run. The language: ``chosen_language`` (an
        explicit choice at start) when the flow has it; else the strongest prior, with the
        contact's remembered language above the visit's, the channel's and the number's."""
        restarting = self.run is not None and self.run.flow_id == flow.id
        if restarting and self.run is not None and service_point is None:
            service_point = self.run.service_point
        self.close_active()
        language = prior_language(
            flow.default_language,
            flow.languages,
            phone_country_language=self.contact.country_language,
            channel_hint=self.inbound.language_hint,
            visit_language=visit_language,
            contact_language=self.contact.language,
        )
        keyword_language = _keyword_language(flow, keyword) if keyword else None
        if keyword_language is not None and keyword_language != self.contact.language:
            # A keyword in one language ("FEEDBACK") is a clear wish, unless the
            # contact already has a language it chose and the keyword is shared.
            language = keyword_language
        if chosen_language is not None and chosen_language in flow.languages:
            language = chosen_language
        if service_point is None and len(flow.service_points) == 1:
            service_point = flow.service_points[0]
        outcome = engine.start(flow, language=language, now=self.now, service_point=service_point)
        if restarting:
            self.events.append(Event.RESTARTED)
        self.events.extend(outcome.events)
        return self.finish(outcome.state, list(outcome.messages))

    def continue_run(self, run: RunState, flow: Flow) -> Turn:
        text = self.inbound.text
        if self.inbound.kind is InboundKind.TEXT:
            other = self.catalogue.by_keyword(keywords.normalise(text))
            if other is not None:
                return self.start_flow(other, keyword=text)
            if keywords.is_restart(text):
                return self.start_flow(flow, service_point=run.service_point)
        if self.inbound.kind is not InboundKind.TEXT or run.current_step is None:
            return self.apply(engine.reply(flow, run, self.inbound, self.now))

        step = flow.step(run.current_step)
        parsed = parse_reply(step, text, run.language)
        decision = decide_language(
            run.language,
            text,
            flow.languages,
            synonym_languages=set(parsed.languages),
            detector=self.detector,
        )
        messages: list[Outgoing] = []
        if decision.unsupported is not None:
            self.events.append(Event.UNSUPPORTED_LANGUAGE)
            names = ", ".join(language_name(code) for code in flow.languages)
            messages.append(
                _info(system_text("unsupported_language", run.language, names=names), run.language)
            )
            if decision.explicit:
                return self.finish(run, [*messages, *engine.reask(flow, run).messages])
        if decision.explicit:
            if not decision.switched:
                return self.finish(run, list(engine.reask(flow, run).messages))
            return self.apply(engine.switch_language(flow, run, decision.language, self.now))
        if decision.switched:
            switched = run.with_(language=decision.language)
            parsed_again = parse_reply(step, text, decision.language)
            if parsed_again.valid or (step.optional and keywords.is_skip(text)):
                return self.apply(engine.reply(flow, switched, self.inbound, self.now), messages)
            return self.apply(
                engine.switch_language(flow, run, decision.language, self.now), messages
            )
        return self.apply(engine.reply(flow, run, self.inbound, self.now), messages)

    def apply(self, outcome: Outcome, before: list[Outgoing] | None = None) -> Turn:
        self.events.extend(outcome.events)
        self.answers.extend(outcome.answers)
        run = outcome.state
        contact = self.contact
        if contact.language != run.language:
            contact = replace(contact, language=run.language)
        return self.finish(run, [*(before or []), *outcome.messages], contact=contact)


def _keyword_language(flow: Flow, keyword: str) -> str | None:
    wanted = keywords.normalise(keyword)
    matches = [
        language
        for language, words in flow.triggers.keywords.items()
        if any(keywords.normalise(word) == wanted for word in words)
    ]
    if len(matches) == 1 and matches[0] in flow.languages:
        return matches[0]
    return None


def _info(text: str, language: str, *, choices: tuple[Choice, ...] = ()) -> Outgoing:
    return Outgoing(text=text, language=language, kind=OutgoingKind.INFO, choices=choices)
