"""YAML flow files -> ``bot.flow.Flow``, with every problem pinned to file:line:column.

Staff write flows in YAML (see docs/flows.md). ``read_flow_text`` parses a file with
PyYAML's composer so that every value keeps its position, reads it section by
section as ``bot.flow_grammar`` defines them (collecting *all* problems instead of
stopping at the first; single values are read by ``bot.flow_values``), then runs the
checks in ``bot.flow_validate``. ``load_flow_text`` is the strict form: it returns a Flow or
raises ``FlowError``. The YAML dialect (which scalars mean what) is ``bot.flow_yaml``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.flow import (
    END,
    Branch,
    Condition,
    Flow,
    FollowupRule,
    OnInvalid,
    Op,
    Option,
    QuietHours,
    ScaleStyle,
    Step,
    StepKind,
    Triggers,
)
from bot.flow_grammar import (
    BRANCH,
    CODE,
    CODE_ENTRY,
    DAYS,
    DEFAULT_SCALE,
    FLOW,
    FOLLOWUP,
    KIND_KEYS,
    LANGUAGE,
    OPTION,
    SCALES,
    STEP,
    TIME,
    TRIGGERS,
    WINDOW,
    step_keys,
)
from bot.flow_problems import (
    FieldPath,
    FlowError,
    Positions,
    Problem,
    ProblemSink,
    Severity,
    did_you_mean,
    sentence,
)
from bot.flow_validate import check_flow
from bot.flow_values import ValueReader, type_name
from bot.flow_yaml import FlowYamlLoader, syntax_problem, to_plain

__all__ = [
    "Reading",
    "flow_version",
    "load_flow_file",
    "load_flow_text",
    "read_flow_file",
    "read_flow_text",
]

# Spellings people bring from other tools, for "did you mean".
OP_ALIASES = {
    "lte": "le", "leq": "le", "<=": "le", "gte": "ge", "geq": "ge", ">=": "ge",
    "<": "lt", ">": "gt", "=": "eq", "==": "eq", "equals": "eq", "is": "eq",
    "neq": "ne", "!=": "ne", "not": "ne", "one_of": "in", "nin": "not_in",
}  # fmt: skip


def flow_version(text: str) -> str:
    """The version of a flow source: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --- the reader ----------------------------------------------------------------------------


@dataclass
class Reading:
    """The outcome of reading one flow file: the flow (None when it has errors) and problems."""

    source: str
    text: str
    flow: Flow | None
    problems: list[Problem]
    positions: Positions
    flow_id: str | None = None  # even when the flow has errors, if the id was readable
    draft: Flow | None = None  # best-effort flow for reports (segments), also with errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def ok(self) -> bool:
        return self.flow is not None


@dataclass
class _Reader(ValueReader):
    """Reads a flow document section by section (see bot.flow_grammar for the sections)."""

    step_ids: list[str] = field(default_factory=list)
    steps_complete: bool = True  # every step had a readable id and type

    # the flow

    def flow(self, doc: Any, text: str, source: str) -> tuple[Flow | None, str | None]:
        top = self.mapping(doc, (), FLOW)
        if top is None:
            return None, None
        flow_id = self.slug(top["id"], ("id",), "flow id") if "id" in top else None

        languages: list[str] = []
        if "languages" in top and self.is_type(top["languages"], ("languages",), list):
            for index, language in enumerate(top["languages"]):
                path: FieldPath = ("languages", index)
                code = self.string(language, path)
                if code is None:
                    continue
                if not LANGUAGE.match(code):
                    self.sink.error(
                        path, f"{code!r} is not a language code", "use codes like fi, sv, en, ru"
                    )
                elif code in languages:
                    self.sink.warning(path, f"{code} is listed twice", "remove the second one")
                else:
                    languages.append(code)
            if not top["languages"]:
                self.sink.error(("languages",), "no languages", "add e.g. `[fi, sv, en]`")
        self.languages = tuple(languages)

        default_language = ""
        if "default_language" in top:
            default_language = self.string(top["default_language"], ("default_language",)) or ""
            if default_language and languages and default_language not in languages:
                suggestion = did_you_mean(default_language, languages)
                self.sink.error(
                    ("default_language",),
                    f"default_language {default_language!r} is not in `languages`",
                    f"use one of: {', '.join(languages)}"
                    + (f" ({suggestion})" if suggestion else "")
                    + f", or add {default_language} to `languages`",
                )
        if not default_language and languages:
            default_language = languages[0]

        title = self.texts(top.get("title"), ("title",), "title") if "title" in top else {}
        closing = (
            self.texts(top.get("closing"), ("closing",), "closing message")
            if "closing" in top
            else {}
        )
        expired = (
            self.texts(top["expired"], ("expired",), "expiry message") if "expired" in top else None
        )
        if "description" in top:
            self.is_type(top["description"], ("description",), str)

        service_points: list[str] = []
        if "service_points" in top and self.is_type(
            top["service_points"], ("service_points",), list
        ):
            for index, point in enumerate(top["service_points"]):
                slug = self.slug(point, ("service_points", index), "service point")
                if slug is not None:
                    service_points.append(slug)

        triggers = (
            self.triggers(top.get("triggers"), service_points)
            if "triggers" in top
            else (Triggers())
        )
        expires_after = Flow.expires_after
        if "expires_after" in top:
            expires_after = self.duration(top["expires_after"], ("expires_after",)) or expires_after
        followup = self.followup(top["followup"]) if "followup" in top else None

        steps = self.steps(top.get("steps"))
        if not steps or not self.steps_complete:
            return None, flow_id
        # Built even when the id is broken, so that the remaining checks still run; the
        # caller never hands out a flow with errors.
        flow = Flow(
            id=flow_id or "",
            version=flow_version(text),
            title=title,
            default_language=default_language or (languages[0] if languages else "fi"),
            languages=self.languages,
            steps=tuple(steps),
            closing=closing,
            triggers=triggers,
            service_points=tuple(service_points),
            expires_after=expires_after,
            expired=expired,
            followup=followup,
            source=source,
        )
        return flow, flow_id

    def triggers(self, value: Any, service_points: list[str]) -> Triggers:
        top = self.mapping(value, ("triggers",), TRIGGERS)
        if top is None:
            return Triggers()
        keywords: dict[str, tuple[str, ...]] = {}
        if "keywords" in top:
            keywords = self.words_per_language(
                top["keywords"], ("triggers", "keywords"), "keywords"
            )
        codes: dict[str, str | None] = {}
        code_languages: dict[str, str] = {}
        if "codes" in top and self.is_type(top["codes"], ("triggers", "codes"), list):
            for index, item in enumerate(top["codes"]):
                path: FieldPath = ("triggers", "codes", index)
                point: str | None = None
                language: str | None = None
                if isinstance(item, dict):
                    entry = self.mapping(item, path, CODE_ENTRY)
                    if entry is None or "code" not in entry:
                        continue
                    if "language" in entry:
                        language = self.code_language(entry["language"], (*path, "language"))
                    if "service_point" in entry:
                        point = self.slug(
                            entry["service_point"], (*path, "service_point"), "service point"
                        )
                        if point is not None and point not in service_points:
                            self.sink.error(
                                (*path, "service_point"),
                                f"service point {point!r} is not in `service_points`",
                                f"add {point} to `service_points`"
                                + (
                                    f" ({did_you_mean(point, service_points)})"
                                    if did_you_mean(point, service_points)
                                    else ""
                                ),
                            )
                    item, path = entry["code"], (*path, "code")
                if isinstance(item, int) and not isinstance(item, bool):
                    item = str(item)
                code = self.string(item, path)
                if code is None:
                    continue
                if not CODE.match(code):
                    self.sink.error(
                        path,
                        f"start code {code!r} has characters that are not allowed",
                        "use 1-64 letters A-Z a-z, digits, _ and - (Telegram deep links allow "
                        "nothing else)",
                    )
                    continue
                if code in codes:
                    self.sink.error(
                        path, f"start code {code!r} is listed twice", "remove the second one"
                    )
                    continue
                codes[code] = point
                if language is not None:
                    code_languages[code] = language
        return Triggers(keywords=keywords, codes=codes, code_languages=code_languages)

    def code_language(self, value: Any, path: FieldPath) -> str | None:
        """A start code's ``language``: one of the flow's ``languages``."""
        language = self.string(value, path)
        if language is None:
            return None
        if self.languages and language not in self.languages:
            suggestion = did_you_mean(language, list(self.languages))
            self.sink.error(
                path,
                f"language {language!r} is not in `languages`",
                f"use one of: {', '.join(self.languages)}"
                + (f" ({suggestion})" if suggestion else ""),
            )
            return None
        return language

    def followup(self, value: Any) -> FollowupRule | None:
        base: FieldPath = ("followup",)
        top = self.mapping(value, base, FOLLOWUP)
        if top is None:
            return None
        rule = FollowupRule()
        changes: dict[str, Any] = {}
        for key in ("delay", "reminder_after", "give_up_after", "frequency_cap"):
            if key in top:
                parsed = self.duration(top[key], (*base, key))
                if parsed is not None:
                    changes[key] = parsed
        if "reminder" in top:
            changes["reminder"] = self.texts(top["reminder"], (*base, "reminder"), "reminder")
        if "window" in top:
            window = self.mapping(top["window"], (*base, "window"), WINDOW)
            if window is not None:
                changes["window"] = self.window(window)
        rule = FollowupRule(**{**rule.__dict__, **changes})
        if rule.give_up_after <= rule.delay:
            self.sink.error(
                (*base, "give_up_after") if "give_up_after" in top else (*base, "delay"),
                "give_up_after is not longer than delay, so no follow-up would ever be sent",
                "make give_up_after longer than delay (e.g. delay: 2h, give_up_after: 3d)",
            )
        if rule.reminder and rule.reminder_after is None:
            self.sink.warning(
                (*base, "reminder"),
                "the reminder is never sent: `reminder_after` is missing",
                "add e.g. `reminder_after: 24h`",
            )
        if rule.reminder_after is not None and rule.delay + rule.reminder_after >= (
            rule.give_up_after
        ):
            self.sink.warning(
                (*base, "reminder_after"),
                "the reminder would come after give_up_after, so it is never sent",
                "shorten reminder_after or lengthen give_up_after",
            )
        return rule

    def window(self, window: dict[str, Any]) -> QuietHours:
        base: FieldPath = ("followup", "window")
        hours = QuietHours()
        start, end, days = hours.start, hours.end, hours.days
        for key in ("start", "end"):
            if key in window:
                text = self.string(window[key], (*base, key))
                if text is not None and not TIME.match(text):
                    self.sink.error(
                        (*base, key), f"{text!r} is not a time", 'write it as "HH:MM", e.g. "09:00"'
                    )
                elif text is not None:
                    start, end = (text, end) if key == "start" else (start, text)
        if "days" in window and self.is_type(window["days"], (*base, "days"), list):
            chosen: list[int] = []
            for index, day in enumerate(window["days"]):
                name = self.choice_of(day, (*base, "days", index), DAYS, "day")
                if name is not None and DAYS.index(name) not in chosen:
                    chosen.append(DAYS.index(name))
            days = tuple(sorted(chosen))
            if not days:
                self.sink.error((*base, "days"), "no days", "list days like [mon, tue, wed]")
        if _minutes(start) >= _minutes(end):
            self.sink.error(
                base,
                f"the window ends ({end}) before it starts ({start})",
                "make `end` later than `start`",
            )
        return QuietHours(start=start, end=end, days=days)

    # steps

    def steps(self, value: Any) -> list[Step]:
        if value is None or not self.is_type(value, ("steps",), list):
            self.steps_complete = False
            return []
        if not value:
            self.sink.error(("steps",), "no steps", "add at least one question")
            self.steps_complete = False
            return []
        # Ids first, so that `next` can be checked against steps further down.
        for raw in value:
            step_id = raw.get("id") if isinstance(raw, dict) else None
            self.step_ids.append(step_id if isinstance(step_id, str) else "")
        steps: list[Step] = []
        for index, raw in enumerate(value):
            step = self.step(raw, index)
            if step is None:
                self.steps_complete = False
            else:
                steps.append(step)
        return steps

    def step(self, raw: Any, index: int) -> Step | None:
        path: FieldPath = ("steps", index)
        if not self.is_type(raw, path, dict, "a step (id, type, text ...)"):
            return None
        kind_name = raw.get("type")
        kind: StepKind | None = None
        if "type" in raw:
            name = self.choice_of(
                kind_name, (*path, "type"), [k.value for k in StepKind], "step type"
            )
            kind = StepKind(name) if name is not None else None
        if kind is None:
            self.mapping(raw, path, STEP)
            return None
        allowed = step_keys(kind)
        elsewhere = {
            key: f"`{key}` is not used by {kind.value} steps"
            + (
                f" (only by {', '.join(k.value for k, keys in KIND_KEYS.items() if key in keys)})"
                if any(key in keys for keys in KIND_KEYS.values())
                else ""
            )
            for key in STEP.names
            if key not in allowed
        }
        step = self.mapping(raw, path, STEP, allowed, elsewhere)
        assert step is not None
        step_id = self.slug(step["id"], (*path, "id"), "step id") if "id" in step else None
        if step_id == END:
            self.sink.error(
                (*path, "id"),
                f"`{END}` is reserved for the end of the survey",
                "choose another id",
            )
            step_id = None
        if step_id is None:
            return None
        text = self.texts(step.get("text"), (*path, "text"), "question") if "text" in step else {}
        line = self.sink.positions.at(path)[0]
        fields: dict[str, Any] = {"id": step_id, "kind": kind, "text": text, "line": line}

        if "optional" in step:
            fields["optional"] = self.boolean(step["optional"], (*path, "optional")) or False
        if "invalid" in step:
            fields["invalid"] = self.texts(step["invalid"], (*path, "invalid"), "re-prompt")
        if "max_attempts" in step:
            attempts = self.integer(step["max_attempts"], (*path, "max_attempts"), 1)
            if attempts is not None:
                fields["max_attempts"] = attempts
        if "on_invalid" in step:
            choice = self.choice_of(
                step["on_invalid"],
                (*path, "on_invalid"),
                [o.value for o in OnInvalid],
                "on_invalid action",
            )
            if choice is not None:
                fields["on_invalid"] = OnInvalid(choice)
        if "metric" in step:
            metric = self.slug(step["metric"], (*path, "metric"), "metric")
            if metric is not None:
                fields["metric"] = metric
        if "note" in step:
            self.is_type(step["note"], (*path, "note"), str)

        if kind is StepKind.CHOICE:
            fields["options"] = self.options(step.get("options"), (*path, "options"))
            if "options" not in step:
                self.sink.error(path, "missing `options`", STEP.hint("options"))
        elif kind is StepKind.SCALE:
            scale = DEFAULT_SCALE
            if "scale" in step:
                scale = self.choice_of(step["scale"], (*path, "scale"), SCALES, "scale") or scale
            style, low, high = _scale_range(scale)
            fields.update(scale_style=style, scale_min=low, scale_max=high)
        elif kind is StepKind.NPS:
            fields.update(scale_min=0, scale_max=10)
        elif kind is StepKind.TEXT and "max_length" in step:
            length = self.integer(step["max_length"], (*path, "max_length"), 1)
            if length is not None:
                fields["max_length"] = length
        elif kind is StepKind.NUMBER:
            for key, name in (("min", "min_value"), ("max", "max_value")):
                if key in step:
                    fields[name] = self.integer(step[key], (*path, key))
            low_value, high_value = fields.get("min_value"), fields.get("max_value")
            if low_value is not None and high_value is not None and low_value > high_value:
                self.sink.error(
                    (*path, "max"),
                    f"max ({high_value}) is below min ({low_value})",
                    "swap min and max",
                )

        if "next" in step:
            branches, default = self.next(step["next"], (*path, "next"), index)
            fields["branches"] = branches
            fields["next"] = default
        return Step(**fields)

    def options(self, value: Any, path: FieldPath) -> tuple[Option, ...]:
        if value is None or not self.is_type(value, path, list):
            return ()
        if len(value) < 2:
            self.sink.error(
                path, "a choice needs at least two options", "add options, or use a message step"
            )
        options: list[Option] = []
        for index, raw in enumerate(value):
            child = (*path, index)
            entry = self.mapping(raw, child, OPTION)
            if entry is None or "id" not in entry:
                continue
            option_id = self.slug(entry["id"], (*child, "id"), "option id")
            if option_id is None:
                continue
            label = (
                self.texts(entry.get("label"), (*child, "label"), "label")
                if ("label" in entry)
                else {}
            )
            synonyms = (
                self.words_per_language(entry["synonyms"], (*child, "synonyms"), "synonyms")
                if "synonyms" in entry
                else {}
            )
            score: int | None = None
            if entry.get("score") is not None:
                score = self.integer(entry["score"], (*child, "score"))
            options.append(Option(id=option_id, label=label, synonyms=synonyms, score=score))
        return tuple(options)

    def next(
        self, value: Any, path: FieldPath, step_index: int
    ) -> tuple[tuple[Branch, ...], str | None]:
        positions = self.sink.positions
        if isinstance(value, str):
            positions.default_next[step_index] = path
            return (), self.goto(value, path)
        if not self.is_type(value, path, list, "a step id, or a list of `- if: ... goto: ...`"):
            return (), None
        branches: list[Branch] = []
        default: str | None = None
        for index, raw in enumerate(value):
            child = (*path, index)
            entry = self.mapping(raw, child, BRANCH)
            if entry is None:
                continue
            if default is not None:
                self.sink.error(
                    child,
                    "this branch is never used: an earlier branch without `if` always applies",
                    "move the branch without `if` to the end of the list",
                )
            target = self.goto(entry["goto"], (*child, "goto")) if "goto" in entry else None
            if "if" not in entry:
                if target is not None:
                    default = target
                    positions.default_next[step_index] = (*child, "goto")
                continue
            conditions = self.conditions(entry["if"], (*child, "if"))
            if conditions is not None:
                # A broken `goto` is already reported; keep the branch (ending the draft
                # there) so that its conditions are still checked.
                positions.branches[(step_index, len(branches))] = child
                branches.append(Branch(when=conditions, goto=target or END))
        return tuple(branches), default

    def goto(self, value: Any, path: FieldPath) -> str | None:
        target = self.string(value, path)
        if target is None:
            return None
        if target != END and target not in self.step_ids:
            suggestion = did_you_mean(target, [s for s in self.step_ids if s])
            self.sink.error(
                path,
                f"there is no step {target!r}",
                (sentence(suggestion) + " " if suggestion else "")
                + f"use a step id ({', '.join(s for s in self.step_ids if s)}) or `end`",
            )
            return None
        return target

    def conditions(self, value: Any, path: FieldPath) -> tuple[Condition, ...] | None:
        top = self.is_type(value, path, dict, "conditions like `{overall: {le: 2}}`")
        if not top:
            return None
        if not value:
            self.sink.error(path, "no conditions", "write e.g. `if: {overall: {le: 2}}`")
            return None
        conditions: list[Condition] = []
        ops = [op.value for op in Op]
        ok = True
        for step_id, test in value.items():
            child = (*path, step_id)
            if not isinstance(test, dict):
                # Shorthand: `overall: 5` means eq, `overall: [4, 5]` means in.
                test = {"in": test} if isinstance(test, list) else {"eq": test}
                self.sink.positions.values.setdefault(
                    (*child, next(iter(test))), self.sink.positions.at(child)
                )
            if not test:
                self.sink.error(child, "no test", "write e.g. `{le: 2}` or `{in: [a, b]}`")
                ok = False
            for op_name, operand in test.items():
                op_path = (*child, op_name)
                if op_name not in ops:
                    alias = OP_ALIASES.get(op_name)
                    suggestion = f"did you mean {alias!r}?" if alias else did_you_mean(op_name, ops)
                    self.sink.error(
                        op_path,
                        f"unknown test `{op_name}`",
                        sentence(suggestion) if suggestion else f"use one of: {', '.join(ops)}",
                        at_key=True,
                    )
                    ok = False
                    continue
                op = Op(op_name)
                operand_value = self.operand(op, operand, op_path)
                if operand_value is None:
                    ok = False
                    continue
                conditions.append(Condition(step=step_id, op=op, value=operand_value))
        return tuple(conditions) if ok else None

    def operand(
        self, op: Op, value: Any, path: FieldPath
    ) -> int | str | bool | tuple[int | str, ...] | None:
        if op in (Op.ANSWERED, Op.SKIPPED):
            return self.boolean(value, path)
        if op in (Op.IN, Op.NOT_IN):
            if not self.is_type(value, path, list, "a list of values, e.g. [poor, very_poor]"):
                return None
            items: list[int | str] = []
            for index, item in enumerate(value):
                if isinstance(item, (int, str)) and not isinstance(item, bool):
                    items.append(item)
                else:
                    self.sink.error(
                        (*path, index),
                        f"should be a number or an option id, not {type_name(item)}",
                        "write a number or an option id",
                    )
                    return None
            if not items:
                self.sink.error(path, "the list is empty", "list at least one value")
                return None
            return tuple(items)
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            return value
        self.sink.error(
            path,
            f"should be a number or an option id, not {type_name(value)}",
            "write a number (for scales) or an option id (for choices)",
        )
        return None


def _scale_range(scale: str) -> tuple[ScaleStyle, int, int]:
    if scale.startswith("smiley-"):
        return ScaleStyle.SMILEY, 1, int(scale.split("-")[1])
    low, high = scale.split("-")
    return ScaleStyle.NUMERIC, int(low), int(high)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


# --- public API ----------------------------------------------------------------------------


def read_flow_text(text: str, source: str = "<string>") -> Reading:
    """Read a flow from YAML text, collecting every problem (never raises on bad input)."""
    positions = Positions()
    sink = ProblemSink(source, positions)
    try:
        node = yaml.compose(text, Loader=FlowYamlLoader)
    except yaml.YAMLError as error:
        return Reading(source, text, None, [syntax_problem(error, source)], positions)
    if node is None:
        sink.error((), "the file is empty", "start with `id:`, `title:`, `languages:` and `steps:`")
        return Reading(source, text, None, sink.problems, positions)
    doc = to_plain(node, (), sink)
    reader = _Reader(sink)
    draft, flow_id = reader.flow(doc, text, source)
    if draft is not None:
        check_flow(draft, sink)
    sink.problems.sort(key=lambda p: (p.line, p.column))
    flow = draft if not sink.has_errors else None
    return Reading(source, text, flow, sink.problems, positions, flow_id, draft)


def read_flow_file(path: str | Path) -> Reading:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        problem = Problem(
            str(path), 1, 1, "(file)", f"not UTF-8 text: {error.reason}", "save the file as UTF-8"
        )
        return Reading(str(path), "", None, [problem], Positions())
    return read_flow_text(text, source=str(path))


def load_flow_text(text: str, source: str = "<string>") -> Flow:
    """A Flow from YAML text; raises FlowError listing every error."""
    reading = read_flow_text(text, source)
    if reading.flow is None:
        raise FlowError(reading.problems)
    return reading.flow


def load_flow_file(path: str | Path) -> Flow:
    reading = read_flow_file(path)
    if reading.flow is None:
        raise FlowError(reading.problems)
    return reading.flow
