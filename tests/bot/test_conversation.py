"""Whole turns: keywords, opt-out, help, codes, restart, expiry and language changes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.conversation import Contact, OptAction, OptVia, Turn, converse, start_run
from bot.messages import Inbound, InboundKind
from bot.run import Event, RunStatus
from bot.texts import language_name
from tests.bot.flows_for_tests import NOW, Catalogue, library_flow, smiley_flow

CATALOGUE = Catalogue(library_flow(), smiley_flow())


class Person:
    """A citizen talking to the core; keeps the contact and the active run like storage."""

    def __init__(self, contact: Contact | None = None) -> None:
        self.contact = contact or Contact(channel="sms", country_language="fi")
        self.run = None
        self.now = NOW
        self.turns: list[Turn] = []

    def send(self, text: str, kind=InboundKind.TEXT, code=None, hint=None, after=None) -> list[str]:
        self.now += after or timedelta(minutes=1)
        flow = CATALOGUE.get(self.run.flow_id) if self.run else None
        inbound = Inbound("sms", "+358401234567", text, kind, start_code=code, language_hint=hint)
        turn = converse(CATALOGUE, self.contact, self.run, flow, inbound, self.now)
        self.turns.append(turn)
        self.contact = turn.contact
        self.run = turn.run if turn.run and turn.run.status is RunStatus.ACTIVE else None
        return [m.text for m in turn.messages]


@pytest.mark.parametrize(
    ("keyword", "language", "first_question"),
    [
        ("PALAUTE", "fi", "Miten käyntisi onnistui? Vastaa 1–5."),
        ("palaute!", "fi", "Miten käyntisi onnistui? Vastaa 1–5."),
        ("respons", "sv", "Hur gick ditt besök? Svara 1–5."),
        ("Feedback", "en", "How was your visit? Reply 1–5."),
    ],
)
def test_a_keyword_starts_the_flow_in_the_keywords_language(keyword, language, first_question):
    person = Person()
    assert person.send(keyword)[-1] == first_question
    assert person.run.language == language
    assert person.run.service_point == "kaarina-main-library"


def test_a_whole_survey_by_sms_with_sticky_language():
    person = Person()
    person.send("FEEDBACK")
    person.send("5")
    person.send("Friendly staff")
    assert person.send("1") == ["Thank you for your feedback!"]
    assert person.turns[-1].events == ("completed",)
    assert person.contact.language == "en"


def test_stop_opts_out_closes_the_run_and_silences_everything_until_start():
    person = Person()
    person.send("PALAUTE")
    assert person.send("STOP") == [
        "Et saa enää kyselyitä meiltä. Jos haluat ne takaisin, vastaa ALOITA."
    ]
    turn = person.turns[-1]
    assert turn.contact.opted_out is True
    assert turn.opt_event is not None and turn.opt_event.action == "out"
    assert [r.status for r in turn.closed] == [RunStatus.ENDED]
    assert person.send("PALAUTE") == []
    assert person.turns[-1].events == ("ignored_opted_out",)
    assert person.send("aloita") == ["Saat taas kyselyitä meiltä. Lopettaaksesi vastaa LOPETA."]
    assert person.contact.opted_out is False


@pytest.mark.parametrize("word", ["stop", "LOPETA", "Stoppa.", "avsluta", "UNSUBSCRIBE", "/stop"])
def test_every_opt_out_word_works_but_only_as_the_whole_message(word):
    person = Person()
    person.send(word)
    assert person.contact.opted_out is True
    other = Person()
    other.send("PALAUTE")
    other.send("5")
    other.send(f"please {word} the noise")
    assert other.contact.opted_out is False
    assert other.turns[-1].answers[0].value == f"please {word} the noise"


def test_help_answers_who_is_asking_and_repeats_the_question():
    person = Person()
    person.send("RESPONS")
    texts = [
        m
        for m in [
            *converse(
                CATALOGUE,
                person.contact,
                person.run,
                CATALOGUE.get("library"),
                Inbound("sms", "x", "HJÄLP"),
                NOW,
                organisation="Kaarinan kaupunki",
                organisation_contact="Tel. 02 123 4567",
            ).messages
        ]
    ]
    assert texts[0].text.startswith("Kaarinan kaupunki ber om respons")
    assert "Tel. 02 123 4567" in texts[0].text
    assert [c.value for c in texts[0].choices] == ["FI", "SV", "EN"]
    assert texts[1].text == "Hur gick ditt besök? Svara 1–5."


def test_a_start_code_binds_the_service_point():
    person = Person(Contact(channel="telegram"))
    person.send(
        "/start kirjasto_kaarina_1", InboundKind.START, code="kirjasto_kaarina_1", hint="sv"
    )
    assert person.run.flow_id == "library"
    assert person.run.service_point == "kaarina-main-library"
    assert person.run.language == "sv"


def test_an_unknown_code_and_a_random_message_explain_how_to_start():
    person = Person()
    assert person.send("/start nope", InboundKind.START, code="nope") == [
        "Tätä koodia ei löytynyt. Tarkista koodi tai lähetä PALAUTE / KYSELY."
    ]
    assert person.send("moi") == ["Hei! Anna palautetta lähettämällä PALAUTE / KYSELY."]


def test_start_over_restarts_the_same_flow_and_keeps_the_old_run_closed():
    person = Person()
    person.send("PALAUTE")
    person.send("2")
    texts = person.send("aloita alusta")
    assert texts[-1] == "Miten käyntisi onnistui? Vastaa 1–5."
    turn = person.turns[-1]
    assert "restarted" in turn.events
    assert turn.closed[0].status is RunStatus.ENDED
    assert turn.run.answers == {}


def test_another_flows_keyword_mid_run_starts_that_flow():
    person = Person()
    person.send("PALAUTE")
    person.send("POLL")
    assert person.run.flow_id == "poll"


def test_after_expiry_a_reply_is_told_the_survey_closed():
    person = Person()
    person.send("PALAUTE")
    texts = person.send("5", after=timedelta(hours=25))
    assert texts == ["Tämä kysely on jo päättynyt. Kiitos!"]
    turn = person.turns[-1]
    assert turn.closed[0].status is RunStatus.EXPIRED
    assert turn.answers == ()


@pytest.mark.parametrize(
    ("status", "written_after", "told_closed"),
    [
        (RunStatus.EXPIRED, timedelta(hours=25), True),  # swept at 24 h, answered an hour later
        (RunStatus.EXPIRED, timedelta(hours=47), True),  # still within expires_after of it
        (RunStatus.EXPIRED, timedelta(hours=49), False),  # long after: just the survey menu
        (RunStatus.COMPLETED, timedelta(hours=25), False),  # finished runs are not "late"
        (RunStatus.ENDED, timedelta(hours=25), False),
    ],
)
def test_an_answer_to_a_run_the_sweep_closed_is_told_the_survey_closed(
    status, written_after, told_closed
):
    person = Person()
    person.send("PALAUTE")
    closed = person.run.with_(status=status, current_step=None)  # what the sweep stores
    flow = CATALOGUE.get(closed.flow_id)
    person.run = None
    asked = []

    def lapsed():
        asked.append(True)
        return closed, flow

    inbound = Inbound("sms", "+358401234567", "5", InboundKind.TEXT)
    turn = converse(CATALOGUE, person.contact, None, None, inbound, NOW + written_after,
                    lapsed=lapsed)  # fmt: skip

    assert asked == [True]
    texts = [m.text for m in turn.messages]
    if told_closed:
        assert texts == ["Tämä kysely on jo päättynyt. Kiitos!"]
        assert turn.events == ("late_answer",)
    else:
        assert "no_survey" in turn.events
        assert texts != ["Tämä kysely on jo päättynyt. Kiitos!"]
    assert turn.run is None and turn.closed == () and turn.answers == ()


def test_a_keyword_after_a_swept_run_starts_without_asking_for_it():
    person = Person()
    inbound = Inbound("sms", "+358401234567", "PALAUTE", InboundKind.TEXT)

    def lapsed():
        raise AssertionError("a keyword needs no lapsed run")

    turn = converse(CATALOGUE, person.contact, None, None, inbound, NOW, lapsed=lapsed)
    assert "started" in turn.events


def test_after_expiry_a_keyword_starts_afresh():
    person = Person()
    person.send("PALAUTE")
    person.send("PALAUTE", after=timedelta(hours=25))
    assert person.turns[-1].events[:2] == ("expired", "started")
    assert person.run is not None


def test_explicit_language_request_reasks_in_that_language():
    person = Person()
    person.send("PALAUTE")
    assert person.send("på svenska") == ["Hur gick ditt besök? Svara 1–5."]
    assert person.contact.language == "sv"
    assert person.send("5") == ["Vad tyckte du om?"]


def test_writing_swedish_switches_and_keeps_the_valid_answer():
    person = Person()
    person.send("PALAUTE")
    person.send("5")
    texts = person.send("Personalen var mycket trevlig och hjälpsam")
    assert texts == ["Kommer du igen? 1 ja, 2 kanske, 3 nej"]
    answer = person.turns[-1].answers[0]
    assert answer.value == "Personalen var mycket trevlig och hjälpsam"
    assert person.run.language == "sv"
    assert person.contact.language == "sv"


def test_a_swedish_sentence_on_a_number_question_reasks_in_swedish_without_penalty():
    person = Person()
    person.send("PALAUTE")
    texts = person.send("Jag förstår inte frågan, kan du förklara")
    assert texts == ["Hur gick ditt besök? Svara 1–5."]
    assert person.run.attempts == 0


@pytest.mark.parametrize("neutral", ["4", "ok", "👍", "5!!", "Matti"])
def test_neutral_replies_never_switch_language(neutral):
    person = Person()
    person.send("FEEDBACK")
    person.send("5")
    person.send(neutral)
    assert person.run.language == "en"


def test_a_language_the_flow_lacks_gets_the_list_of_languages():
    person = Person()
    person.send("PALAUTE")
    person.send("5")
    texts = person.send("Очень хорошая библиотека, спасибо большое")
    assert texts[0] == "Valitettavasti kysely on vain näillä kielillä: suomi, svenska, English."
    assert person.turns[-1].answers[0].step_id == "liked"


def test_language_menu_lists_the_flow_languages():
    person = Person()
    person.send("PALAUTE")
    texts = person.send("/language")
    assert texts == ["Valitse kieli: FI suomi, SV svenska, EN English"]
    assert person.send("EN") == ["How was your visit? Reply 1–5."]


def test_follow_up_start_respects_opt_out_and_closes_an_older_run():
    opted_out = Contact(channel="sms", opted_out=True)
    turn = start_run(CATALOGUE, opted_out, "library", run=None, run_flow=None, now=NOW)
    assert turn.messages == () and turn.run is None
    person = Person()
    person.send("POLL")
    turn = start_run(
        CATALOGUE,
        person.contact,
        "library",
        run=person.run,
        run_flow=CATALOGUE.get("poll"),
        now=NOW,
        visit_language="sv",
        service_point="kaarina-main-library",
    )
    assert turn.run.flow_id == "library" and turn.run.language == "sv"
    assert turn.closed[0].flow_id == "poll"
    assert turn.messages[-1].text == "Hur gick ditt besök? Svara 1–5."


@pytest.mark.parametrize(
    ("chosen", "visit", "started_in"),
    [
        ("sv", None, "sv"),  # chosen at start (simulator, chat --lang): wins
        ("sv", "en", "sv"),
        (None, "sv", "fi"),  # a visit's language is a prior: the remembered one wins
        (None, None, "fi"),  # nothing chosen: the remembered language
        ("de", None, "fi"),  # a choice the flow cannot honour is no choice
    ],
)
def test_a_language_chosen_at_start_wins_over_the_remembered_one(chosen, visit, started_in):
    person = Person()
    person.send("PALAUTE")
    person.send("4")  # answered in Finnish: remembered
    assert person.contact.language == "fi"
    turn = start_run(
        CATALOGUE,
        person.contact,
        "library",
        run=person.run,
        run_flow=CATALOGUE.get("library"),
        now=NOW,
        language=chosen,
        visit_language=visit,
    )
    assert turn.run.language == started_in


@pytest.mark.parametrize(
    ("word", "reply_starts"),
    [
        ("HJÄLP", "Palaute ber om respons"),
        ("apua", "Palaute kysyy palautetta"),
        ("STOPPA", "Du får inga fler enkäter"),
        ("LOPETA", "Et saa enää kyselyitä"),
    ],
)
def test_local_keywords_are_answered_in_their_own_language(word, reply_starts):
    english_speaker = Person(Contact(channel="sms", language="en", country_language="fi"))
    assert english_speaker.send(word)[0].startswith(reply_starts)


def test_international_keywords_keep_the_conversation_language():
    person = Person()
    person.send("RESPONS")
    assert person.send("STOP")[0].startswith("Du får inga fler enkäter")


def test_a_provider_flagged_opt_out_is_recorded_as_via_provider():
    person = Person()
    inbound = Inbound("sms", "+358401234567", "STOP", provider_keyword="STOP")
    turn = converse(CATALOGUE, person.contact, None, None, inbound, NOW)
    assert turn.contact.opted_out is True
    assert turn.opt_event is not None and turn.opt_event.via == "provider"
    custom = Inbound("sms", "+358401234567", "PERU", provider_keyword="STOP")
    assert converse(CATALOGUE, person.contact, None, None, custom, NOW).contact.opted_out


def test_plain_start_offers_every_flow_as_a_button_that_starts_it():
    person = Person(Contact(channel="telegram"))
    person.send("/start", InboundKind.START, hint="en")
    menu = person.turns[-1].messages[0]
    assert menu.text == "Hello! To give feedback, send FEEDBACK / POLL."
    assert [(c.value, c.label) for c in menu.choices] == [
        ("FEEDBACK", "Library"),
        ("POLL", "Poll"),
    ]
    person.send(menu.choices[1].value)
    assert person.run.flow_id == "poll" and person.run.language == "en"


def test_languages_are_named_in_their_own_language():
    """One table, code -> own name, for the menus of the core and the simulator alike."""
    codes = ("fi", "se", "fr", "uk")
    assert [language_name(c) for c in codes] == [
        "suomi",
        "davvisámegiella",
        "français",
        "українська",
    ]
    assert language_name("xx") == "xx"


def test_outcomes_are_enums_that_store_as_the_same_text():
    person = Person()
    person.send("PALAUTE")
    person.send("STOP")
    turn = person.turns[-1]
    assert turn.opt_event is not None
    assert (turn.opt_event.action, turn.opt_event.via) == (OptAction.OUT, OptVia.KEYWORD)
    assert (f"{turn.opt_event.action}", f"{turn.opt_event.via}") == ("out", "keyword")
    assert turn.events == (Event.OPTED_OUT,)
    assert all(isinstance(event, Event) for t in person.turns for event in t.events)
