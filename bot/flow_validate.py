"""Checks on a read flow that need the whole picture: graph, conditions, synonyms, triggers.

``bot.flow_loader`` reads a file field by field (types, unknown keys, translations) and
then calls ``check_flow`` on the result; ``check_catalogue`` compares flows with each
other (ids, start keywords and codes must be unique). ``segment_report`` says what each
prompt costs as SMS. Everything here is pure: no files, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.flow import END, Condition, Flow, Op, Step, StepKind, Texts
from bot.flow_problems import (
    FieldPath,
    Positions,
    Problem,
    ProblemSink,
    Severity,
    did_you_mean,
    format_path,
    sentence,
)
from bot.keywords import HELP, LANGUAGE_MENU, OPT_IN, OPT_OUT, RESTART, SKIP, normalise
from bot.sms_segments import SegmentCount, count_segments

NUMERIC_KINDS = frozenset({StepKind.SCALE, StepKind.NPS, StepKind.NUMBER})
ORDER_OPS = frozenset({Op.LT, Op.LE, Op.GT, Op.GE})

# Words the conversation layer handles before a flow ever sees them.
_RESERVED = {
    **{word: "stops all messages (opt-out)" for word in OPT_OUT},
    **{word: "turns messages back on (opt-in)" for word in OPT_IN},
    **{word: "asks for help" for word in HELP},
    **{word: "opens the language menu" for word in LANGUAGE_MENU},
    **{word: "starts the survey over" for words in RESTART.values() for word in words},
}
_SKIP_WORDS = {word: language for language, words in SKIP.items() for word in words}


def normalise_word(text: str) -> str:
    """How replies and keywords are compared: case-folded, single-spaced, no edge punctuation."""
    return normalise(text)


# --- one flow ------------------------------------------------------------------------------


def _step_path(index: int) -> FieldPath:
    return ("steps", index)


def _successors(flow: Flow, index: int, positions: Positions) -> Iterator[tuple[str, FieldPath]]:
    """Every step id (or END) a step can lead to, with where that is written."""
    step = flow.steps[index]
    for number, branch in enumerate(step.branches):
        path = positions.branches.get((index, number), (*_step_path(index), "next"))
        yield branch.goto, (*path, "goto")
    if step.next is not None:
        yield step.next, positions.default_next.get(index, (*_step_path(index), "next"))
    elif index + 1 < len(flow.steps):
        yield flow.steps[index + 1].id, (*_step_path(index), "next")
    else:
        yield END, (*_step_path(index), "next")


def edges(flow: Flow) -> set[tuple[str, str]]:
    """Every (step id, next step id or END) move the flow allows."""
    out: set[tuple[str, str]] = set()
    for index, step in enumerate(flow.steps):
        for target, _ in _successors(flow, index, Positions()):
            out.add((step.id, target))
    return out


def _graph(flow: Flow, positions: Positions) -> dict[int, list[tuple[int, FieldPath]]]:
    index_of: dict[str, int] = {}
    for index, step in enumerate(flow.steps):
        index_of.setdefault(step.id, index)
    graph: dict[int, list[tuple[int, FieldPath]]] = {}
    for index in range(len(flow.steps)):
        graph[index] = [
            (index_of[target], path)
            for target, path in _successors(flow, index, positions)
            if target in index_of
        ]
    return graph


def _reachable(graph: dict[int, list[tuple[int, FieldPath]]], start: int) -> set[int]:
    seen = {start}
    todo = [start]
    while todo:
        for target, _ in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _cycles(graph: dict[int, list[tuple[int, FieldPath]]]) -> list[tuple[list[int], FieldPath]]:
    """Each loop once: the steps on it and the `goto` that closes it."""
    found: list[tuple[list[int], FieldPath]] = []
    state: dict[int, int] = {}  # 1 = on the stack, 2 = done
    stack: list[int] = []

    def visit(node: int) -> None:
        state[node] = 1
        stack.append(node)
        for target, path in graph[node]:
            if state.get(target) == 1:
                found.append(([*stack[stack.index(target) :], target], path))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def _asked_before(graph: dict[int, list[tuple[int, FieldPath]]]) -> dict[int, set[int]]:
    """For each step, the steps that can come before it on some path."""
    before: dict[int, set[int]] = {node: set() for node in graph}
    for node in graph:
        for later in _reachable(graph, node) - {node}:
            before[later].add(node)
    return before


def check_flow(flow: Flow, sink: ProblemSink) -> None:
    """Add the problems of one flow that need more than one field to see."""
    positions = sink.positions
    if not any(step.kind is not StepKind.MESSAGE for step in flow.steps):
        sink.warning(("steps",), "the flow asks nothing", "add a question step")

    first_index: dict[str, int] = {}
    for index, step in enumerate(flow.steps):
        if step.id in first_index:
            sink.error(
                (*_step_path(index), "id"),
                f"step id {step.id!r} is already used by steps[{first_index[step.id]}]",
                "give every step its own id",
            )
        else:
            first_index[step.id] = index

    graph = _graph(flow, positions)
    reachable = _reachable(graph, 0)
    for index, step in enumerate(flow.steps):
        if index not in reachable:
            sink.error(
                _step_path(index),
                f"step {step.id!r} can never be reached",
                "point a `next`/`goto` at it, or remove the step",
            )
    for loop, path in _cycles(graph):
        names = " → ".join(flow.steps[i].id for i in loop)
        sink.error(
            path,
            f"these steps can loop forever: {names}",
            "send the branch forward (to a later step or `end`); a survey must always finish",
        )

    before = _asked_before(graph)
    for index, step in enumerate(flow.steps):
        for number, branch in enumerate(step.branches):
            branch_path = positions.branches.get((index, number), (*_step_path(index), "next"))
            for condition in branch.when:
                _check_condition(flow, sink, index, condition, branch_path, first_index, before)
        if step.options:
            _check_options(flow, sink, index, step)

    for index, step in enumerate(flow.steps):
        _check_prompt_words(flow, sink, index, step)
    _check_keywords(flow, sink)


def _check_condition(
    flow: Flow,
    sink: ProblemSink,
    index: int,
    condition: Condition,
    branch_path: FieldPath,
    first_index: dict[str, int],
    before: dict[int, set[int]],
) -> None:
    step_path: FieldPath = (*branch_path, "if", condition.step)
    path: FieldPath = (*step_path, condition.op.value)
    if condition.step not in first_index:
        suggestion = did_you_mean(condition.step, first_index)
        sink.error(
            step_path,
            f"the condition uses step {condition.step!r}, which does not exist",
            (sentence(suggestion) + " " if suggestion else "")
            + "conditions name the step whose answer they test",
            at_key=True,
        )
        return
    target_index = first_index[condition.step]
    target = flow.steps[target_index]
    here = flow.steps[index].id
    if target_index != index and target_index not in before[index]:
        sink.error(
            step_path,
            f"step {condition.step!r} is never asked before {here!r}, so its answer is not "
            "known here",
            "test this step's own answer or one asked earlier",
            at_key=True,
        )
        return
    if target.kind is StepKind.MESSAGE:
        sink.error(
            step_path,
            f"step {condition.step!r} is a message: it has no answer to test",
            "test a question step",
            at_key=True,
        )
        return
    if condition.op in (Op.ANSWERED, Op.SKIPPED):
        return
    values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
    if target.kind is StepKind.TEXT:
        sink.error(
            path,
            f"{condition.step!r} is a free-text answer: `{condition.op.value}` cannot test it",
            "use `answered: true` or `skipped: true`",
            at_key=True,
        )
    elif target.kind in NUMERIC_KINDS:
        _check_numeric(sink, target, condition, values, path)
    else:
        _check_option_values(sink, target, condition, values, path)


def _numeric_range(step: Step) -> tuple[int | None, int | None]:
    if step.kind is StepKind.NUMBER:
        return step.min_value, step.max_value
    return step.scale_min, step.scale_max


def _check_numeric(
    sink: ProblemSink,
    target: Step,
    condition: Condition,
    values: tuple[int | str | bool, ...],
    path: FieldPath,
) -> None:
    low, high = _numeric_range(target)
    span = f"{low}–{high}" if low is not None and high is not None else "numbers"
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool):
            sink.error(
                path,
                f"{condition.step!r} is answered with a number ({span}), not {value!r}",
                "compare it with a number, e.g. `le: 2`",
            )
            return
    numbers = [int(v) for v in values]
    outside = [
        n for n in numbers if (low is not None and n < low) or (high is not None and n > high)
    ]
    op = condition.op
    never = always = False
    if op in (Op.EQ, Op.IN) and len(outside) == len(numbers):
        never = True
    elif op in (Op.EQ, Op.IN, Op.NE, Op.NOT_IN) and outside:
        sink.warning(
            path,
            f"{', '.join(map(str, outside))} is outside {span}, so it never matches",
            f"use values within {span}",
        )
    elif op in ORDER_OPS and low is not None and high is not None:
        n = numbers[0]
        never = (
            (op is Op.LT and n <= low)
            or (op is Op.LE and n < low)
            or (op is Op.GT and n >= high)
            or (op is Op.GE and n > high)
        )
        always = (
            (op is Op.LT and n > high)
            or (op is Op.LE and n >= high)
            or (op is Op.GT and n < low)
            or (op is Op.GE and n <= low)
        )
    if never:
        sink.error(
            path,
            f"`{op.value}: {_show(condition.value)}` can never hold: "
            f"{condition.step!r} is answered with {span}",
            f"use a value within {span}",
        )
    elif always:
        sink.warning(
            path,
            f"`{op.value}: {_show(condition.value)}` holds for every answer ({span})",
            "drop the condition, or use a value inside the range",
        )


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _check_option_values(
    sink: ProblemSink,
    target: Step,
    condition: Condition,
    values: tuple[int | str | bool, ...],
    path: FieldPath,
) -> None:
    ids = [o.id for o in target.options] if target.kind is StepKind.CHOICE else ["yes", "no"]
    if condition.op in ORDER_OPS:
        sink.error(
            path,
            f"{condition.step!r} is answered with an option, so `{condition.op.value}` "
            "cannot compare it",
            f"use `eq` or `in` with option ids: {', '.join(ids)}",
            at_key=True,
        )
        return
    for value in values:
        if str(value) not in ids or not isinstance(value, str):
            suggestion = did_you_mean(str(value), ids)
            sink.error(
                path,
                f"{condition.step!r} has no option {value!r}",
                (sentence(suggestion) + " " if suggestion else "") + f"options: {', '.join(ids)}",
            )


def _check_options(flow: Flow, sink: ProblemSink, index: int, step: Step) -> None:
    base: FieldPath = (*_step_path(index), "options")
    seen_ids: dict[str, int] = {}
    # word -> [(option number, language, where)]
    words: dict[str, list[tuple[int, str, FieldPath]]] = {}
    for number, option in enumerate(step.options):
        path: FieldPath = (*base, number)
        if option.id in seen_ids:
            sink.error(
                (*path, "id"),
                f"option id {option.id!r} is already used by options[{seen_ids[option.id]}]",
                "give every option its own id",
            )
            continue
        seen_ids[option.id] = number
        for language, label in option.label.items():
            words.setdefault(normalise_word(label), []).append(
                (number, language, (*path, "label", language))
            )
        for language, synonyms in option.synonyms.items():
            listed: set[str] = set()
            for word_number, word in enumerate(synonyms):
                where = _synonym_path(sink.positions, path, language, word_number)
                key = normalise_word(word)
                if key in listed:
                    sink.warning(where, f"{word!r} is listed twice for {language}", "remove one")
                    continue
                listed.add(key)
                words.setdefault(key, []).append((number, language, where))

    for word, uses in words.items():
        if not word:
            continue
        if word in seen_ids and any(n != seen_ids[word] for n, _, _ in uses):
            number, _, where = next(u for u in uses if u[0] != seen_ids[word])
            sink.error(
                where,
                f"{word!r} is the id of option {word!r}, so it never chooses "
                f"{step.options[number].id!r}",
                "remove the word, or rename one of the options",
            )
        reserved = _RESERVED.get(word)
        if reserved is not None:
            sink.error(
                uses[0][2],
                f"{word!r} {reserved} in every conversation, so it never answers this question",
                "use another word",
            )
        if step.optional and word in _SKIP_WORDS:
            sink.error(
                uses[0][2],
                f"{word!r} skips an optional question, so it never chooses this option",
                "use another word, or make the step not optional",
            )
        options_using = sorted({n for n, _, _ in uses})
        if len(options_using) < 2:
            continue
        by_language: dict[str, set[int]] = {}
        for number, language, _ in uses:
            by_language.setdefault(language, set()).add(number)
        clash = [lang for lang, numbers in by_language.items() if len(numbers) > 1]
        names = " and ".join(repr(step.options[n].id) for n in options_using)
        later = max(uses, key=lambda u: sink.positions.at(u[2]))[2]
        if clash:
            sink.error(
                later,
                f"{word!r} is accepted for both {names} in {', '.join(sorted(clash))}",
                "each word may choose only one option: remove it from one of them",
            )
        else:
            langs = {
                number: sorted(lang for n, lang, _ in uses if n == number)
                for number in options_using
            }
            detail = ", ".join(
                f"{step.options[n].id} in {'/'.join(langs[n])}" for n in options_using
            )
            others = [lang for lang in flow.languages if lang not in by_language]
            sink.warning(
                later,
                f"{word!r} means different options in different languages ({detail})",
                "a citizen writing in "
                + (", ".join(others) if others else "another language")
                + " gets asked again; use distinct words if you can",
            )
    if any(w.isdigit() for w in words) and not all(
        any(normalise_word(s).isdigit() for ws in o.synonyms.values() for s in ws)
        for o in step.options
    ):
        sink.warning(
            base,
            "some options accept a digit and some do not, so replies 1, 2, 3 ... no longer "
            "pick options by position",
            "give every option its digit in `synonyms`, or none",
        )


_RANGE = re.compile(r"(?<![\d:.])(\d{1,2})\s*[-–]\s*(\d{1,2})(?!\d|[:.]\d)")


def _answer_range(step: Step) -> tuple[int, int] | None:
    if step.kind in (StepKind.SCALE, StepKind.NPS):
        return step.scale_min, step.scale_max
    if step.kind is StepKind.CHOICE and step.options:
        return 1, len(step.options)
    if step.kind is StepKind.NUMBER and step.min_value is not None and step.max_value is not None:
        return step.min_value, step.max_value
    return None


def _check_prompt_words(flow: Flow, sink: ProblemSink, index: int, step: Step) -> None:
    """The question should tell people how to answer: the right range, how to skip."""
    expected = _answer_range(step)
    for field_name, texts in (("text", step.text), ("invalid", step.invalid or {})):
        for language, text in texts.items():
            path: FieldPath = ("steps", index, field_name, language)
            found = _RANGE.search(text)
            if expected is not None and found is not None:
                said = (int(found.group(1)), int(found.group(2)))
                if said != expected:
                    sink.warning(
                        path,
                        f"the text says {found.group(0)!r}, but the answers are "
                        f"{expected[0]}-{expected[1]}",
                        f"write {expected[0]}-{expected[1]} in the text, or fix the "
                        + ("options" if step.kind is StepKind.CHOICE else "scale"),
                    )
            words = SKIP.get(language)
            if step.optional and field_name == "text" and words:
                folded = normalise_word(text)
                if not any(word in folded for word in words):
                    sink.warning(
                        path,
                        "the question is optional but does not say how to skip it",
                        f'add e.g. "or reply {words[0].upper()}" to the {language} text',
                    )


def _synonym_path(
    positions: Positions, option_path: FieldPath, language: str, number: int
) -> FieldPath:
    exact: FieldPath = (*option_path, "synonyms", language, number)
    if positions.has(exact):
        return exact
    # Words under `all:` were copied into every language: find them there.
    for key in ("all",):
        candidate: FieldPath = (*option_path, "synonyms", key)
        if positions.has(candidate):
            return candidate
    return (*option_path, "synonyms", language)


def _check_keywords(flow: Flow, sink: ProblemSink) -> None:
    seen: dict[str, str] = {}
    for language, words in flow.triggers.keywords.items():
        for number, word in enumerate(words):
            path: FieldPath = ("triggers", "keywords", language, number)
            if not sink.positions.has(path):
                path = ("triggers", "keywords", "all")
            key = normalise_word(word)
            reserved = _RESERVED.get(key)
            if reserved is not None or key in _SKIP_WORDS:
                sink.error(
                    path,
                    f"start keyword {word!r} already "
                    + (reserved or "skips a question")
                    + ", so it cannot start this flow",
                    "choose another keyword",
                )
            elif key in seen and seen[key] == language:
                sink.warning(path, f"keyword {word!r} is listed twice", "remove one")
            seen.setdefault(key, language)


# --- several flows -------------------------------------------------------------------------


class ReadingLike(Protocol):
    source: str
    positions: Positions
    draft: Flow | None
    flow_id: str | None


def check_catalogue(readings: Sequence[ReadingLike]) -> list[list[Problem]]:
    """Problems between flows (one list per reading): same id, keyword or start code."""
    out: list[list[Problem]] = [[] for _ in readings]

    def add(number: int, path: FieldPath, message: str, hint: str) -> None:
        reading = readings[number]
        sink = ProblemSink(reading.source, reading.positions)
        sink.add(path, message, hint, Severity.ERROR)
        out[number].extend(sink.problems)

    ids: dict[str, int] = {}
    keywords: dict[str, tuple[int, str]] = {}
    codes: dict[str, int] = {}
    for number, reading in enumerate(readings):
        if reading.flow_id is not None:
            if reading.flow_id in ids:
                other = readings[ids[reading.flow_id]].source
                add(
                    number,
                    ("id",),
                    f"flow id {reading.flow_id!r} is also used by {other}",
                    "give every flow its own id",
                )
            else:
                ids[reading.flow_id] = number
        flow = reading.draft
        if flow is None:
            continue
        for language, words in flow.triggers.keywords.items():
            for index, word in enumerate(words):
                key = normalise_word(word)
                path: FieldPath = ("triggers", "keywords", language, index)
                if not reading.positions.has(path):
                    path = ("triggers", "keywords", "all")
                owner = keywords.get(key)
                if owner is not None and owner[0] != number:
                    add(
                        number,
                        path,
                        f"start keyword {word!r} also starts {readings[owner[0]].source}",
                        "a keyword may start only one flow: choose another one",
                    )
                else:
                    keywords.setdefault(key, (number, language))
        for index, code in enumerate(flow.triggers.codes):
            owner_number = codes.get(code)
            if owner_number is not None and owner_number != number:
                path = ("triggers", "codes", index)
                if reading.positions.has((*path, "code")):
                    path = (*path, "code")
                add(
                    number,
                    path,
                    f"start code {code!r} also starts {readings[owner_number].source}",
                    "a start code may open only one flow: choose another one",
                )
            else:
                codes.setdefault(code, number)
    return out


# --- SMS cost ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptCost:
    path: str  # "steps[0].text" / "closing" ...
    language: str
    text: str
    count: SegmentCount
    line: int
    column: int


def _prompts(flow: Flow) -> Iterator[tuple[FieldPath, Texts]]:
    for index, step in enumerate(flow.steps):
        yield ("steps", index, "text"), step.text
        if step.invalid:
            yield ("steps", index, "invalid"), step.invalid
    yield ("closing",), flow.closing
    if flow.expired:
        yield ("expired",), flow.expired
    if flow.followup is not None and flow.followup.reminder:
        yield ("followup", "reminder"), flow.followup.reminder


def segment_report(flow: Flow, positions: Positions) -> list[PromptCost]:
    """What every citizen-facing text of ``flow`` costs as one SMS, per language."""
    costs: list[PromptCost] = []
    for path, texts in _prompts(flow):
        for language in flow.languages:
            text = texts.get(language)
            if text is None:
                continue
            line, column = positions.at((*path, language))
            costs.append(
                PromptCost(format_path(path), language, text, count_segments(text), line, column)
            )
    return costs


def segment_problems(
    flow: Flow, positions: Positions, max_segments: int, source: str
) -> list[Problem]:
    """A warning for every text above ``max_segments`` SMS segments."""
    problems: list[Problem] = []
    for cost in segment_report(flow, positions):
        if cost.count.segments <= max_segments:
            continue
        why = f"; UCS-2 because of {cost.count.non_gsm!r}" if cost.count.non_gsm else ""
        problems.append(
            Problem(
                source,
                cost.line,
                cost.column,
                f"{cost.path}.{cost.language}",
                f"costs {cost.count.describe()}, more than {max_segments}{why}",
                "shorten the text"
                + (", or avoid the characters that force UCS-2" if cost.count.non_gsm else ""),
                Severity.WARNING,
            )
        )
    return problems
