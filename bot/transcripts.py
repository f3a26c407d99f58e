"""Flow tests as transcripts: what the citizen sends, what the bot must answer.

A transcript file (``tests/transcripts/<flow id>/*.yaml``) holds one conversation per
YAML document (documents are separated by ``---``)::

    flow: library-visit
    language: fi
    name: a low score asks what went wrong
    conversation:
      - bot: "Hei! Kaarinan kirjasto kysyy: ..."    # what the start sends
      - citizen: "2"
        bot: "Olemme pahoillamme. Mikä meni pieleen? ..."
      - citizen: "ohita"
        bot: ["first message", "second message"]    # several messages, in order
      - at: +25h                                    # time passes first
        citizen: "3"
        bot: []                                     # nothing is sent
    status: completed                               # or active, expired, ended
    answers: {overall: 2, visit_reason: event}
    skipped: [what_went_wrong]

Each turn may also say ``button: option_id`` (a pressed button instead of typed text)
and ``status:`` (the run's status right after that turn). A turn with ``at:`` and no
``citizen`` runs the expiry check, as the clock worker does. Without ``at`` each turn
happens one minute after the previous one. The runner drives ``bot.engine`` directly,
unless the transcript says ``via: conversation``: then every message goes through
``bot.conversation.converse`` as a real SMS would (start keywords, HELP, STOP, start
over, the expiry message), and the first turn may be the citizen's keyword.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot import engine
from bot.conversation import Contact, FlowCatalogue, converse, start_run
from bot.conversation import Turn as ConversationTurn
from bot.flow import END, Flow
from bot.flow_grammar import parse_duration
from bot.flow_problems import FieldPath, Positions, Problem, ProblemSink, did_you_mean, sentence
from bot.flow_validate import edges
from bot.flow_yaml import parse_yaml_documents
from bot.messages import Inbound, InboundKind, OutgoingKind
from bot.run import Outcome, RunState, RunStatus

DEFAULT_START = datetime(2026, 5, 14, 9, 0, tzinfo=UTC)
TRANSCRIPT_KEYS = (
    "flow", "language", "name", "service_point", "start_at", "via", "conversation", "status",
    "answers", "skipped",
)  # fmt: skip
VIAS = ("engine", "conversation")
TURN_KEYS = ("citizen", "button", "bot", "at", "status")
STATUSES = tuple(status.value for status in RunStatus)


@dataclass(frozen=True)
class Turn:
    line: int
    citizen: str | None
    button: str | None
    bot: tuple[str, ...]
    at: timedelta | None
    status: RunStatus | None


@dataclass(frozen=True)
class Transcript:
    source: str
    line: int
    flow_id: str
    language: str
    name: str
    turns: tuple[Turn, ...]
    service_point: str | None = None
    start_at: datetime = DEFAULT_START
    status: RunStatus | None = None
    answers: Mapping[str, Any] | None = None
    skipped: tuple[str, ...] | None = None
    via: str = "engine"  # or "conversation": keywords, STOP, HELP, expiry messages too

    @property
    def title(self) -> str:
        return f"{self.source}:{self.line}: {self.flow_id} [{self.language}] {self.name}"


@dataclass
class Result:
    transcript: Transcript
    failures: list[str] = field(default_factory=list)
    path: list[str] = field(default_factory=list)  # step ids prompted, END when completed

    @property
    def passed(self) -> bool:
        return not self.failures


# --- reading -------------------------------------------------------------------------------


def _words(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _read_turn(
    raw: Any, path: FieldPath, sink: ProblemSink, first: bool, via: str = "engine"
) -> Turn | None:
    if not isinstance(raw, dict):
        sink.error(
            path,
            "a turn should be `citizen: ...` and `bot: ...` lines",
            'write e.g. `- citizen: "2"` with `bot: "..."` under it',
        )
        return None
    for key in raw:
        if key not in TURN_KEYS:
            suggestion = did_you_mean(key, TURN_KEYS)
            sink.error(
                (*path, key),
                f"unknown key `{key}`",
                sentence(suggestion) if suggestion else f"use {', '.join(TURN_KEYS)}",
                at_key=True,
            )
    citizen, button = raw.get("citizen"), raw.get("button")
    if isinstance(citizen, int) and not isinstance(citizen, bool):
        citizen = str(citizen)
    if citizen is not None and not isinstance(citizen, str):
        sink.error(
            (*path, "citizen"), "should be the text the citizen sends", "put the text in quotes"
        )
        return None
    if button is not None and not isinstance(button, str):
        sink.error((*path, "button"), "should be the value of a button", "e.g. `button: good`")
        return None
    if citizen is not None and button is not None:
        sink.error(
            path,
            "a turn is either typed (`citizen`) or a button, not both",
            "split it into two turns",
        )
        return None
    if "bot" not in raw:
        sink.error(path, "missing `bot`", "write what the bot answers (`bot: []` for nothing)")
        return None
    bot = _words(raw["bot"])
    if bot is None:
        sink.error(
            (*path, "bot"),
            "should be a text or a list of texts",
            "write the bot's message(s) in quotes",
        )
        return None
    at: timedelta | None = None
    if "at" in raw:
        text = raw["at"]
        parsed = (
            parse_duration(text[1:]) if isinstance(text, str) and text.startswith("+") else None
        )
        if parsed is None:
            sink.error((*path, "at"), f"{text!r} is not a time jump", "write e.g. `at: +25h`")
            return None
        at = parsed
    status: RunStatus | None = None
    if "status" in raw:
        if raw["status"] not in STATUSES:
            sink.error(
                (*path, "status"),
                f"unknown status {raw['status']!r}",
                f"use one of: {', '.join(STATUSES)}",
            )
            return None
        status = RunStatus(raw["status"])
    if first and via == "engine" and (citizen is not None or button is not None or at is not None):
        sink.error(
            path,
            "the first turn is what the bot sends when the flow starts",
            "begin the conversation with a `- bot: ...` turn",
        )
        return None
    if first and at is not None:
        sink.error((*path, "at"), "the first turn cannot wait", "remove `at` from the first turn")
        return None
    if not first and citizen is None and button is None and at is None:
        sink.error(
            path,
            "this turn has no `citizen`, `button` or `at`",
            "say what the citizen sends, or how much time passes",
        )
        return None
    line = sink.positions.at(path)[0]
    return Turn(line, citizen, button, bot, at, status)


def _read_transcript(
    doc: Any, positions: Positions, source: str
) -> tuple[Transcript | None, list[Problem]]:
    sink = ProblemSink(source, positions)
    if not isinstance(doc, dict):
        sink.error(
            (),
            "a transcript should start with `flow:` and `language:`",
            "see docs/flows.md, section Transcripts",
        )
        return None, sink.problems
    for key in doc:
        if key not in TRANSCRIPT_KEYS:
            suggestion = did_you_mean(key, TRANSCRIPT_KEYS)
            sink.error(
                (key,),
                f"unknown key `{key}`",
                sentence(suggestion) if suggestion else f"use {', '.join(TRANSCRIPT_KEYS)}",
                at_key=True,
            )
    for key in ("flow", "language", "conversation"):
        if key not in doc:
            sink.error((), f"missing `{key}`", f"add `{key}:`")
    via = doc.get("via", "engine")
    if via not in VIAS:
        sink.error(("via",), f"unknown `via: {via}`", "use `engine` or `conversation`")
        via = "engine"
    conversation = doc.get("conversation")
    turns: list[Turn] = []
    if isinstance(conversation, list) and conversation:
        for index, raw in enumerate(conversation):
            turn = _read_turn(raw, ("conversation", index), sink, index == 0, via)
            if turn is not None:
                turns.append(turn)
    elif "conversation" in doc:
        sink.error(
            ("conversation",),
            "should be a list of turns",
            "write `- bot: ...` and `- citizen: ...` lines",
        )
    start_at = DEFAULT_START
    if "start_at" in doc:
        try:
            start_at = datetime.fromisoformat(str(doc["start_at"]))
        except ValueError:
            sink.error(
                ("start_at",), "not a date and time", 'write e.g. "2026-05-14T09:00:00+03:00"'
            )
        if start_at.tzinfo is None:
            start_at = start_at.replace(tzinfo=UTC)
    status = None
    if "status" in doc:
        if doc["status"] in STATUSES:
            status = RunStatus(doc["status"])
        else:
            sink.error(
                ("status",),
                f"unknown status {doc['status']!r}",
                f"use one of: {', '.join(STATUSES)}",
            )
    answers = doc.get("answers")
    if answers is not None and not isinstance(answers, dict):
        sink.error(("answers",), "should map step ids to answers", "e.g. `{overall: 2}`")
        answers = None
    skipped = doc.get("skipped")
    if skipped is not None and _words(skipped) is None:
        sink.error(("skipped",), "should be a list of step ids", "e.g. `[comment]`")
        skipped = None
    if sink.has_errors or not isinstance(doc.get("flow"), str):
        return None, sink.problems
    return (
        Transcript(
            source=source,
            line=positions.at(())[0],
            flow_id=str(doc["flow"]),
            language=str(doc["language"]),
            name=str(doc.get("name", "")),
            turns=tuple(turns),
            service_point=doc.get("service_point"),
            start_at=start_at,
            status=status,
            answers=answers,
            skipped=_words(skipped) if skipped is not None else None,
            via=via,
        ),
        sink.problems,
    )


def read_transcripts_text(
    text: str, source: str = "<string>"
) -> tuple[list[Transcript], list[Problem]]:
    documents, problems = parse_yaml_documents(text, source)
    transcripts: list[Transcript] = []
    for doc, positions in documents:
        transcript, found = _read_transcript(doc, positions, source)
        problems.extend(found)
        if transcript is not None:
            transcripts.append(transcript)
    return transcripts, problems


def transcript_files(paths: Iterable[str | Path]) -> list[Path]:
    """YAML files named, directories searched recursively, sorted."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        else:
            out.append(path)
    return out


def read_transcripts(paths: Iterable[str | Path]) -> tuple[list[Transcript], list[Problem]]:
    transcripts: list[Transcript] = []
    problems: list[Problem] = []
    for file in transcript_files(paths):
        found, trouble = read_transcripts_text(file.read_text(encoding="utf-8"), str(file))
        transcripts.extend(found)
        problems.extend(trouble)
    return transcripts, problems


# --- running -------------------------------------------------------------------------------


def _texts(outcome: Outcome) -> tuple[str, ...]:
    return tuple(message.text for message in outcome.messages)


def _track(path: list[str], outcome: Outcome) -> None:
    for message in outcome.messages:
        step_id = message.step_id
        is_prompt = message.kind is OutgoingKind.PROMPT and step_id is not None
        if is_prompt and (not path or path[-1] != step_id):
            path.append(step_id)
    if outcome.state.status is RunStatus.COMPLETED and (not path or path[-1] != END):
        path.append(END)


def _diff(where: str, expected: tuple[str, ...], got: tuple[str, ...]) -> str:
    lines = [f"{where}: the bot's messages differ"]
    for index in range(max(len(expected), len(got))):
        want = expected[index] if index < len(expected) else "(nothing)"
        have = got[index] if index < len(got) else "(nothing)"
        mark = " " if want == have else "!"
        lines.append(f"  {mark} expected: {want}")
        lines.append(f"  {mark} got:      {have}")
    return "\n".join(lines)


def _inbound(turn: Turn, channel: str) -> Inbound:
    return Inbound(
        channel=channel,
        address="transcript",
        text=turn.citizen if turn.citizen is not None else str(turn.button),
        kind=InboundKind.TEXT if turn.citizen is not None else InboundKind.BUTTON,
    )


def _check_turn(result: Result, turn: Turn, got: tuple[str, ...], state: RunState | None) -> None:
    where = f"{result.transcript.source}:{turn.line}"
    if got != turn.bot:
        result.failures.append(_diff(where, turn.bot, got))
    if turn.status is not None:
        status = state.status.value if state is not None else "not started"
        if state is None or state.status is not turn.status:
            result.failures.append(
                f"{where}: expected the run to be {turn.status.value}, it is {status}"
            )


def _run_engine(transcript: Transcript, flow: Flow, result: Result) -> RunState:
    now = transcript.start_at
    outcome = engine.start(
        flow, language=transcript.language, now=now, service_point=transcript.service_point
    )
    state: RunState = outcome.state
    _track(result.path, outcome)
    for number, turn in enumerate(transcript.turns):
        if number == 0 and turn.citizen is None and turn.button is None:
            _check_turn(result, turn, _texts(outcome), state)  # what the start sent
            continue
        now = now + (turn.at if turn.at is not None else timedelta(minutes=1))
        if turn.citizen is None and turn.button is None:
            expired = engine.expire(flow, state, now)
            outcome = expired if expired is not None else Outcome(state=state)
        elif state.status is not RunStatus.ACTIVE:
            result.failures.append(
                f"{transcript.source}:{turn.line}: the run is already {state.status.value}; "
                f"nothing can answer {turn.citizen or turn.button!r}"
            )
            break
        else:
            outcome = engine.reply(flow, state, _inbound(turn, "transcript"), now)
        state = outcome.state
        _track(result.path, outcome)
        _check_turn(result, turn, _texts(outcome), state)
    return state


def _run_conversation(
    transcript: Transcript, catalogue: FlowCatalogue, result: Result
) -> RunState | None:
    """Like a real SMS conversation: keywords, STOP/HELP and expiry messages included."""
    contact = Contact(channel="sms", language=transcript.language)
    now = transcript.start_at
    run: RunState | None = None  # the active run
    last: RunState | None = None  # the transcript flow's latest run, for the final checks

    def follow(turn_result: ConversationTurn) -> tuple[str, ...]:
        nonlocal contact, run, last
        contact = turn_result.contact
        states = [*turn_result.closed, *([turn_result.run] if turn_result.run else [])]
        for state in states:
            if state.flow_id == transcript.flow_id:
                last = state
        current = turn_result.run
        run = current if current is not None and current.status is RunStatus.ACTIVE else None
        outcome = Outcome(
            state=last if last is not None else current or _placeholder(transcript),
            messages=turn_result.messages,
        )
        if current is None or current.flow_id == transcript.flow_id:
            _track(result.path, outcome)
        return tuple(message.text for message in turn_result.messages)

    for number, turn in enumerate(transcript.turns):
        if number == 0 and turn.citizen is None and turn.button is None:
            got = follow(
                start_run(
                    catalogue,
                    contact,
                    transcript.flow_id,
                    run=None,
                    run_flow=None,
                    now=now,
                    language=transcript.language,
                    service_point=transcript.service_point,
                )
            )
            _check_turn(result, turn, got, last)
            continue
        if number > 0:
            now = now + (turn.at if turn.at is not None else timedelta(minutes=1))
        run_flow = catalogue.get(run.flow_id) if run is not None else None
        if turn.citizen is None and turn.button is None:
            # The clock worker closing runs left unanswered: nothing is sent.
            expired = engine.expire(run_flow, run, now) if run and run_flow else None
            if expired is not None:
                last = expired.state if expired.state.flow_id == transcript.flow_id else last
                run = None
            _check_turn(result, turn, (), last)
            continue
        got = follow(converse(catalogue, contact, run, run_flow, _inbound(turn, "sms"), now))
        _check_turn(result, turn, got, last)
    return last


def _placeholder(transcript: Transcript) -> RunState:
    now = transcript.start_at
    return RunState(
        flow_id=transcript.flow_id,
        flow_version="",
        language=transcript.language,
        status=RunStatus.ENDED,
        current_step=None,
        attempts=0,
        answers={},
        skipped=(),
        started_at=now,
        last_activity_at=now,
        expires_at=now,
    )


def run_transcript(transcript: Transcript, flows: FlowCatalogue) -> Result:
    result = Result(transcript)
    flow = flows.get(transcript.flow_id)
    if flow is None:
        result.failures.append(f"{transcript.title}: no flow {transcript.flow_id!r}")
        return result
    if transcript.language not in flow.languages:
        result.failures.append(
            f"{transcript.title}: {flow.id} does not declare language {transcript.language!r}"
        )
        return result
    if transcript.via == "conversation":
        state = _run_conversation(transcript, flows, result)
    else:
        state = _run_engine(transcript, flow, result)
    status = state.status.value if state is not None else "not started"
    if transcript.status is not None and (state is None or state.status is not transcript.status):
        result.failures.append(
            f"{transcript.title}: expected the run to end {transcript.status.value}, it is {status}"
        )
    answers = dict(state.answers) if state is not None else {}
    if transcript.answers is not None and dict(transcript.answers) != answers:
        result.failures.append(
            f"{transcript.title}: answers differ\n  expected: {dict(transcript.answers)}\n"
            f"  got:      {answers}"
        )
    skipped = tuple(state.skipped) if state is not None else ()
    if transcript.skipped is not None and tuple(transcript.skipped) != skipped:
        result.failures.append(
            f"{transcript.title}: skipped steps differ\n  expected: {list(transcript.skipped)}\n"
            f"  got:      {list(skipped)}"
        )
    return result


def uncovered(flow: Flow, results: Iterable[Result]) -> dict[str, list[tuple[str, str]]]:
    """Per declared language, the moves between steps no transcript takes."""
    taken: dict[str, set[tuple[str, str]]] = {language: set() for language in flow.languages}
    for result in results:
        if result.transcript.flow_id != flow.id or result.transcript.language not in taken:
            continue
        taken[result.transcript.language].update(zip(result.path, result.path[1:], strict=False))
    possible = edges(flow)
    return {
        language: sorted(possible - moves) for language, moves in taken.items() if possible - moves
    }
