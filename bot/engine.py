"""The conversation engine: pure functions from (flow, state, reply, now) to an Outcome.

No I/O and no clock reads. ``start`` opens a run, ``reply`` handles one citizen
message, ``expire`` closes a run left unanswered, ``switch_language`` re-asks the
current question in another language. Keywords (STOP, HELP, start codes ...) are
handled one level up, in ``bot.conversation``.
"""

from __future__ import annotations

from datetime import datetime

from bot.flow import END, Condition, Flow, OnInvalid, Op, ScaleStyle, Step, StepKind
from bot.keywords import is_skip
from bot.messages import Inbound, InboundKind, Outgoing, OutgoingKind
from bot.replies import Parsed, button_value, choices_for, parse_reply
from bot.run import AnswerValue, Event, Outcome, RecordedAnswer, RunState, RunStatus
from bot.texts import SMILEY_FACES, system_text

QUESTION_KINDS = frozenset(
    {StepKind.CHOICE, StepKind.SCALE, StepKind.NPS, StepKind.YES_NO, StepKind.TEXT, StepKind.NUMBER}
)


class EngineError(Exception):
    """A programming or data error (e.g. a run whose step no longer exists). Not retryable."""


def start(flow: Flow, *, language: str, now: datetime, service_point: str | None = None) -> Outcome:
    """Open a run at the flow's first step and say everything up to the first question."""
    if language not in flow.languages:
        language = flow.default_language
    state = RunState(
        flow_id=flow.id,
        flow_version=flow.version,
        language=language,
        status=RunStatus.ACTIVE,
        current_step=None,
        attempts=0,
        answers={},
        skipped=(),
        started_at=now,
        last_activity_at=now,
        expires_at=now + flow.expires_after,
        service_point=service_point,
    )
    first = flow.steps[0].id if flow.steps else END
    current, messages, events = _walk(flow, language, first, {}, ())
    if current is None:
        state = state.with_(status=RunStatus.COMPLETED)
    else:
        state = state.with_(current_step=current)
    return Outcome(state=state, messages=messages, events=(Event.STARTED, *events))


def reply(flow: Flow, state: RunState, inbound: Inbound, now: datetime) -> Outcome:
    """Handle one citizen message to an active run."""
    if state.status is not RunStatus.ACTIVE or state.current_step is None:
        raise EngineError(f"run of {state.flow_id!r} is {state.status}, not active")
    if flow.version != state.flow_version:
        raise EngineError(
            f"run is pinned to version {state.flow_version} of {flow.id!r}, got {flow.version}"
        )
    closed = expire(flow, state, now)
    if closed is not None:
        return closed
    step = _step(flow, state.current_step)

    if inbound.kind is InboundKind.MEDIA and not inbound.text.strip():
        text = system_text("media_not_understood", state.language)
        touched = state.with_(last_activity_at=now, expires_at=now + flow.expires_after)
        return Outcome(state=touched, messages=(_reprompt_with(flow, step, state.language, text),))

    if step.optional and is_skip(inbound.text):
        return _accept(flow, state, step, None, inbound.text, now, skipped=True)

    parsed = _parse(step, inbound, state.language)
    if parsed.valid:
        return _accept(
            flow, state, step, parsed.value, inbound.text, now, truncated=parsed.truncated
        )
    return _invalid(flow, state, step, inbound.text, now)


def expire(flow: Flow, state: RunState, now: datetime) -> Outcome | None:
    """Close the run as incomplete if it has been left unanswered past its expiry."""
    if state.status is not RunStatus.ACTIVE or now < state.expires_at:
        return None
    closed = state.with_(status=RunStatus.EXPIRED, current_step=None, attempts=0)
    return Outcome(state=closed, events=(Event.EXPIRED,))


def switch_language(flow: Flow, state: RunState, language: str, now: datetime) -> Outcome:
    """Continue in ``language``: the current question is asked again in it."""
    if language not in flow.languages:
        raise EngineError(f"flow {flow.id!r} does not declare language {language!r}")
    switched = state.with_(
        language=language, last_activity_at=now, expires_at=now + flow.expires_after
    )
    if switched.status is not RunStatus.ACTIVE or switched.current_step is None:
        return Outcome(state=switched, events=(Event.LANGUAGE_CHANGED,))
    step = _step(flow, switched.current_step)
    return Outcome(
        state=switched, messages=(_prompt(flow, step, language),), events=(Event.LANGUAGE_CHANGED,)
    )


def reask(flow: Flow, state: RunState) -> Outcome:
    """Ask the current question again, unchanged (after a language menu or a help reply)."""
    if state.status is not RunStatus.ACTIVE or state.current_step is None:
        return Outcome(state=state)
    step = _step(flow, state.current_step)
    return Outcome(state=state, messages=(_prompt(flow, step, state.language),))


def abandon(state: RunState, now: datetime) -> RunState:
    """Close a run early (opt-out, start over, another flow started)."""
    return state.with_(status=RunStatus.ENDED, current_step=None, last_activity_at=now)


# --- internals ------------------------------------------------------------------------------


def _step(flow: Flow, step_id: str) -> Step:
    try:
        return flow.step(step_id)
    except KeyError as error:
        raise EngineError(str(error)) from error


def _parse(step: Step, inbound: Inbound, language: str) -> Parsed:
    if inbound.kind is InboundKind.BUTTON:
        pressed = button_value(step, inbound.text)
        if pressed.valid:
            return pressed
    return parse_reply(step, inbound.text, language)


def _accept(
    flow: Flow,
    state: RunState,
    step: Step,
    value: AnswerValue,
    raw: str,
    now: datetime,
    *,
    skipped: bool = False,
    truncated: bool = False,
) -> Outcome:
    answer = _record(state, step, value, raw, now, skipped=skipped, truncated=truncated)
    answers = state.answers if skipped else {**state.answers, step.id: value}
    skipped_steps = (*state.skipped, step.id) if skipped else state.skipped
    next_id = _next_step(flow, step, answers, skipped_steps)
    current, messages, events = _walk(flow, state.language, next_id, answers, skipped_steps)
    status = RunStatus.ACTIVE if current is not None else RunStatus.COMPLETED
    state = state.with_(
        answers=answers,
        skipped=skipped_steps,
        attempts=0,
        current_step=current,
        status=status,
        last_activity_at=now,
        expires_at=now + flow.expires_after,
    )
    return Outcome(state=state, messages=messages, answers=(answer,), events=events)


def _record(
    state: RunState,
    step: Step,
    value: AnswerValue,
    raw: str,
    now: datetime,
    *,
    skipped: bool,
    truncated: bool = False,
) -> RecordedAnswer:
    return RecordedAnswer(
        step_id=step.id,
        value=value,
        raw_text=raw,
        language=state.language,
        answered_at=now,
        skipped=skipped,
        truncated=truncated,
    )


def _invalid(flow: Flow, state: RunState, step: Step, raw: str, now: datetime) -> Outcome:
    attempts = state.attempts + 1
    if attempts < step.max_attempts:
        message = _reprompt(flow, step, state.language)
        touched = state.with_(
            attempts=attempts, last_activity_at=now, expires_at=now + flow.expires_after
        )
        return Outcome(state=touched, messages=(message,))
    if step.on_invalid is OnInvalid.SKIP:
        return _accept(flow, state, step, None, raw, now, skipped=True)
    answer = _record(state, step, None, raw, now, skipped=True)
    closed = state.with_(
        status=RunStatus.ENDED,
        current_step=None,
        attempts=0,
        skipped=(*state.skipped, step.id),
        last_activity_at=now,
    )
    bye = Outgoing(
        text=system_text("too_many_invalid", state.language),
        language=state.language,
        kind=OutgoingKind.CLOSING,
    )
    return Outcome(state=closed, messages=(bye,), answers=(answer,), events=(Event.ENDED,))


def _walk(
    flow: Flow,
    language: str,
    step_id: str,
    answers: dict[str, AnswerValue],
    skipped: tuple[str, ...],
) -> tuple[str | None, tuple[Outgoing, ...], tuple[Event, ...]]:
    """Walk from ``step_id`` through message steps to the next question or the end.

    Returns the question's step id (None at the end), the messages to send and events.
    """
    messages: list[Outgoing] = []
    for _ in range(len(flow.steps) + 1):
        if step_id == END:
            closing = Outgoing(
                text=flow.text(flow.closing, language),
                language=language,
                kind=OutgoingKind.CLOSING,
            )
            return None, (*messages, closing), (Event.COMPLETED,)
        step = _step(flow, step_id)
        messages.append(_prompt(flow, step, language))
        if step.kind in QUESTION_KINDS:
            return step.id, tuple(messages), ()
        step_id = _next_step(flow, step, answers, skipped)
    raise EngineError(f"flow {flow.id!r} loops through message steps without a question")


def _next_step(
    flow: Flow, step: Step, answers: dict[str, AnswerValue], skipped: tuple[str, ...]
) -> str:
    for branch in step.branches:
        if all(_condition(c, answers, skipped) for c in branch.when):
            return branch.goto
    if step.next is not None:
        return step.next
    index = flow.index_of(step.id)
    return flow.steps[index + 1].id if index + 1 < len(flow.steps) else END


def _condition(
    condition: Condition, answers: dict[str, AnswerValue], skipped: tuple[str, ...]
) -> bool:
    answered = condition.step in answers
    if condition.op is Op.ANSWERED:
        return answered == bool(condition.value)
    if condition.op is Op.SKIPPED:
        return (condition.step in skipped) == bool(condition.value)
    if not answered:
        return condition.op is Op.NE or condition.op is Op.NOT_IN
    value = answers[condition.step]
    expected = condition.value
    if condition.op is Op.EQ:
        return value == expected
    if condition.op is Op.NE:
        return value != expected
    if condition.op is Op.IN:
        return isinstance(expected, tuple) and value in expected
    if condition.op is Op.NOT_IN:
        return isinstance(expected, tuple) and value not in expected
    if not isinstance(value, int) or not isinstance(expected, int) or isinstance(expected, bool):
        return False
    if condition.op is Op.LT:
        return value < expected
    if condition.op is Op.LE:
        return value <= expected
    if condition.op is Op.GT:
        return value > expected
    return value >= expected  # Op.GE


def _prompt(flow: Flow, step: Step, language: str) -> Outgoing:
    return Outgoing(
        text=flow.text(step.text, language),
        language=language,
        kind=OutgoingKind.PROMPT,
        step_id=step.id,
        choices=choices_for(step, language, flow.default_language),
    )


def _reprompt(flow: Flow, step: Step, language: str) -> Outgoing:
    if step.invalid:
        text = flow.text(step.invalid, language)
    else:
        text = _builtin_reprompt(flow, step, language)
        if step.optional:
            text = f"{text} {system_text('skip_hint', language)}"
    return _reprompt_with(flow, step, language, text)


def _reprompt_with(flow: Flow, step: Step, language: str, text: str) -> Outgoing:
    return Outgoing(
        text=text,
        language=language,
        kind=OutgoingKind.REPROMPT,
        step_id=step.id,
        choices=choices_for(step, language, flow.default_language),
    )


def _builtin_reprompt(flow: Flow, step: Step, language: str) -> str:
    if step.kind is StepKind.SCALE:
        low, high = step.scale_min, step.scale_max
        size = high - low + 1
        if step.scale_style is ScaleStyle.SMILEY and size in SMILEY_FACES:
            faces = "".join(SMILEY_FACES[size])
            return system_text("invalid_smiley", language, low=low, high=high, faces=faces)
        return system_text("invalid_scale", language, low=low, high=high)
    if step.kind is StepKind.NPS:
        return system_text("invalid_scale", language, low=0, high=10)
    if step.kind is StepKind.NUMBER:
        low_value = step.min_value if step.min_value is not None else 0
        high_value = step.max_value if step.max_value is not None else 999999
        return system_text("invalid_number", language, low=low_value, high=high_value)
    if step.kind is StepKind.YES_NO:
        return system_text("invalid_yes_no", language)
    if step.kind is StepKind.CHOICE:
        labels = ", ".join(
            f"{i} {o.label.get(language) or o.label[flow.default_language]}"
            for i, o in enumerate(step.options, start=1)
        )
        return system_text("invalid_choice", language, options=labels)
    return system_text("invalid_text", language)
