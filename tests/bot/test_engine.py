"""The pure engine: what the citizen receives and what gets recorded, turn by turn."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot import engine
from bot.messages import Inbound, InboundKind, OutgoingKind
from bot.run import Outcome, RunState, RunStatus
from tests.bot.flows_for_tests import NOW, library_flow, smiley_flow


def say(text: str, kind: InboundKind = InboundKind.TEXT) -> Inbound:
    return Inbound(channel="simulator", address="s1", text=text, kind=kind)


def play(flow, replies, language="fi", minutes_between=1):
    """Run a whole conversation; return the transcript lines and the last outcome."""
    outcome = engine.start(flow, language=language, now=NOW)
    lines = [f"bot: {m.text}" for m in outcome.messages]
    answers = list(outcome.answers)
    state = outcome.state
    now = NOW
    for text in replies:
        now += timedelta(minutes=minutes_between)
        lines.append(f"citizen: {text}")
        outcome = engine.reply(flow, state, say(text), now)
        lines.extend(f"bot: {m.text}" for m in outcome.messages)
        answers.extend(outcome.answers)
        state = outcome.state
    return lines, answers, outcome


def test_happy_path_in_finnish_records_every_answer():
    lines, answers, last = play(library_flow(), ["4", "Hyvät kirjat", "joo"])
    assert lines == [
        "bot: Hei! Kolme lyhyttä kysymystä.",
        "bot: Miten käyntisi onnistui? Vastaa 1–5.",
        "citizen: 4",
        "bot: Mistä pidit?",
        "citizen: Hyvät kirjat",
        "bot: Tuletko uudelleen? 1 kyllä, 2 ehkä, 3 en",
        "citizen: joo",
        "bot: Kiitos palautteesta!",
    ]
    assert [(a.step_id, a.value, a.raw_text, a.language) for a in answers] == [
        ("overall", 4, "4", "fi"),
        ("liked", "Hyvät kirjat", "Hyvät kirjat", "fi"),
        ("return", "yes", "joo", "fi"),
    ]
    assert last.state.status is RunStatus.COMPLETED
    assert last.state.current_step is None
    assert "completed" in last.events
    assert last.messages[-1].kind is OutgoingKind.CLOSING


def test_low_score_branches_to_what_went_wrong_and_long_text_is_cut():
    lines, answers, _ = play(library_flow(), ["2", "Jonot olivat aivan liian pitkät", "3"])
    assert "bot: Mikä meni pieleen?" in lines
    assert "bot: Mistä pidit?" not in lines
    wrong = answers[1]
    assert wrong.step_id == "went_wrong"
    assert wrong.value == "Jonot olivat aivan l"  # max_length 20
    assert wrong.truncated is True
    assert wrong.raw_text == "Jonot olivat aivan liian pitkät"
    assert answers[2].value == "no"  # "3" = the third option


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("5", 5),
        (" 4. ", 4),
        ("4/5", 4),
        ("neljä", 4),
        ("fyra", 4),
        ("three", 3),
        ("😀", 5),
        ("🙂", 4),
        ("😐", 3),
        ("☹️", 2),
        ("😞", 1),
        ("⭐⭐⭐", 3),
        ("5 kiitos hyvä palvelu", 5),
    ],
)
def test_scale_understands_digits_words_and_faces(reply, value):
    _, answers, _ = play(library_flow(), [reply])
    assert answers[0].value == value


def test_invalid_reply_reprompts_then_skips_after_max_attempts():
    lines, answers, last = play(library_flow(), ["hmm", "7"])
    assert lines[3] == "bot: Vastaa numerolla 1–5."
    assert answers == [answers[0]]
    assert answers[0].skipped is True and answers[0].value is None
    assert answers[0].raw_text == "7"
    assert last.state.current_step == "liked"  # not ≤ 2: the default branch


def test_reprompt_of_an_optional_step_tells_how_to_skip_and_skip_words_work():
    flow = library_flow()
    _, answers, last = play(flow, ["5", "ohita"])
    assert answers[1].skipped is True and answers[1].step_id == "liked"
    assert last.state.current_step == "return"
    assert "liked" in last.state.skipped


def test_too_many_invalid_replies_can_end_the_run():
    lines, answers, last = play(library_flow(), ["5", "ok", "banana", "kiwi"])
    assert last.state.status is RunStatus.ENDED
    assert lines[-1] == "bot: Emme saaneet vastausta. Kysely päättyy tähän. Kiitos!"
    assert answers[-1].step_id == "return" and answers[-1].skipped


def test_choice_reprompt_lists_the_options_in_the_run_language():
    lines, _, _ = play(library_flow(), ["5", "ok", "banana"], language="en")
    assert lines[-1] == "bot: Please reply with one of these: 1 Yes, 2 Maybe, 3 No"


def test_expired_run_is_closed_as_incomplete():
    flow = library_flow()
    started = engine.start(flow, language="fi", now=NOW)
    later = NOW + timedelta(hours=24, seconds=1)
    outcome = engine.reply(flow, started.state, say("5"), later)
    assert outcome.state.status is RunStatus.EXPIRED
    assert outcome.answers == ()
    assert engine.expire(flow, started.state, NOW + timedelta(hours=23)) is None


def test_each_reply_extends_the_expiry():
    flow = library_flow()
    started = engine.start(flow, language="fi", now=NOW)
    step = engine.reply(flow, started.state, say("5"), NOW + timedelta(hours=20))
    outcome = engine.reply(flow, step.state, say("kivaa"), NOW + timedelta(hours=30))
    assert outcome.state.status is RunStatus.ACTIVE
    assert outcome.answers[0].step_id == "liked"


def test_switch_language_reasks_the_current_question():
    flow = library_flow()
    started = engine.start(flow, language="fi", now=NOW)
    outcome = engine.switch_language(flow, started.state, "sv", NOW)
    assert outcome.state.language == "sv"
    assert [m.text for m in outcome.messages] == ["Hur gick ditt besök? Svara 1–5."]


def test_smiley_nps_number_and_yes_no_steps():
    _, answers, last = play(smiley_flow(), ["😀", "10", "3 kertaa", "kyllä"], language="en")
    assert [a.value for a in answers] == [4, 10, 3, "yes"]
    assert last.state.status is RunStatus.COMPLETED


@pytest.mark.parametrize(
    ("replies", "reprompt"),
    [
        (["😐"], "Please reply with a number 1–4 or a face 😞🙁🙂😀"),
        (["4", "11"], "Please reply with a number 0–10."),
        (["4", "7", "51"], "Please reply with a number 0–50."),
        (["4", "7", "5", "maybe"], "Please reply YES or NO."),
    ],
)
def test_out_of_range_replies_get_a_clear_reprompt(replies, reprompt):
    lines, _, _ = play(smiley_flow(), replies, language="en")
    assert lines[-1] == f"bot: {reprompt}"


def test_buttons_carry_values_and_smiley_labels_have_words():
    flow = smiley_flow()
    started = engine.start(flow, language="fi", now=NOW)
    choices = started.messages[-1].choices
    assert [c.value for c in choices] == ["1", "2", "3", "4"]
    assert choices[-1].label == "😀 Erittäin tyytyväinen"
    pressed = engine.reply(flow, started.state, say("3", InboundKind.BUTTON), NOW)
    assert pressed.answers[0].value == 3


def test_media_without_text_gets_a_polite_reprompt_and_costs_no_attempt():
    flow = library_flow()
    started = engine.start(flow, language="sv", now=NOW)
    outcome = engine.reply(flow, started.state, say("", InboundKind.MEDIA), NOW)
    assert outcome.messages[0].text.startswith("Jag kan inte läsa bilder")
    assert outcome.state.attempts == 0


def test_run_state_survives_a_json_round_trip():
    flow = library_flow()
    _, _, last = play(flow, ["2"])
    restored = RunState.from_json(last.state.to_json())
    assert restored == last.state
    again = engine.reply(flow, restored, say("Liian vähän istumapaikkoja"), NOW)
    assert again.answers[0].step_id == "went_wrong"


def test_a_run_is_never_continued_on_another_flow_version():
    started = engine.start(library_flow("v1"), language="fi", now=NOW)
    with pytest.raises(engine.EngineError, match="pinned to version v1"):
        engine.reply(library_flow("v2"), started.state, say("5"), NOW)


def test_engine_is_pure_same_input_same_output():
    flow = library_flow()
    first: Outcome = engine.start(flow, language="en", now=NOW)
    second: Outcome = engine.start(flow, language="en", now=NOW)
    assert first == second
    assert engine.reply(flow, first.state, say("3"), NOW) == engine.reply(
        flow, second.state, say("3"), NOW
    )
