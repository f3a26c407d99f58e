"""Engine throughput: conversation steps per second on one core, for a 6-step flow.

A "step" is one ``bot.engine.reply`` call that records an answer and returns the
next prompt. A second line adds what storage does per step on top (the run state
to JSON and back), for information.
The baseline, measured in the same run, is the least any engine must do per step
(parse an integer, copy the answers dict, build a reply tuple), so the ratio says
how much the real engine costs on top of bare bookkeeping.

Target (issue 3): >= 20,000 steps/s on one core.

    .venv/bin/python -m bench.engine [--conversations 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime, timedelta

from bot import engine
from bot.flow import END, Branch, Condition, Flow, Op, Option, Step, StepKind
from bot.messages import Inbound
from bot.run import RunState

T0 = datetime(2026, 5, 14, 9, 0, tzinfo=UTC)


def six_step_flow() -> Flow:
    def t(text: str) -> dict[str, str]:
        return {"fi": text, "sv": text, "en": text}

    yes_no = (Option("yes", t("Yes"), {"fi": ("kyllä",)}), Option("no", t("No")))
    return Flow(
        id="bench",
        version="b1",
        title=t("Bench"),
        default_language="fi",
        languages=("fi", "sv", "en"),
        closing=t("Thanks"),
        steps=(
            Step(
                id="overall",
                kind=StepKind.SCALE,
                text=t("Overall 1-5?"),
                branches=(Branch((Condition("overall", Op.LE, 2),), "wrong"),),
                next="liked",
            ),
            Step(id="wrong", kind=StepKind.TEXT, text=t("What went wrong?"), next="nps"),
            Step(id="liked", kind=StepKind.TEXT, text=t("What did you like?")),
            Step(id="nps", kind=StepKind.NPS, text=t("0-10?")),
            Step(id="again", kind=StepKind.YES_NO, text=t("Again?")),
            Step(id="visits", kind=StepKind.NUMBER, text=t("Visits?"), min_value=0),
            Step(id="found", kind=StepKind.CHOICE, text=t("Found it?"), options=yes_no, next=END),
        ),
    )


REPLIES = ("4", "Friendly staff and quiet rooms", "9", "kyllä", "3", "1")


def run_engine(flow: Flow, conversations: int, *, round_trip: bool = False) -> int:
    steps = 0
    for n in range(conversations):
        now = T0 + timedelta(seconds=n)
        state = engine.start(flow, language="fi", now=now).state
        for text in REPLIES:
            if round_trip:  # what storage adds: the state to JSON and back
                state = RunState.from_json(json.loads(json.dumps(state.to_json())))
            outcome = engine.reply(flow, state, Inbound("sms", "+358401", text), now)
            assert outcome.answers, f"{text!r} was not accepted"
            state = outcome.state
            steps += 1
    return steps


def run_engine_with_json(flow: Flow, conversations: int) -> int:
    return run_engine(flow, conversations, round_trip=True)


def run_baseline(conversations: int) -> int:
    steps = 0
    for _ in range(conversations):
        answers: dict[str, object] = {}
        for index, text in enumerate(REPLIES):
            answers = dict(answers)
            value: object = int(text) if text.isdigit() else text
            answers[str(index)] = value
            _reply = (f"prompt {index}", value)
            steps += 1
    return steps


def measure(label: str, fn, *args) -> float:
    """Steps per CPU second of this process (robust when other jobs share the core)."""
    fn(*args[:-1], max(1, args[-1] // 10))  # warm-up
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    steps = fn(*args)
    cpu = time.process_time() - cpu_started
    wall = time.perf_counter() - wall_started
    rate = steps / cpu
    timing = f"cpu {cpu:6.3f} s  wall {wall:6.3f} s"
    print(f"{label:<30} {steps:>7} steps  {timing}  {rate:>10,.0f} steps/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=4000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    flow = six_step_flow()
    print(f"engine benchmark: {args.conversations} conversations x {len(REPLIES)} steps, one core")
    baseline = measure("baseline (bare bookkeeping)", run_baseline, args.conversations)
    real = measure("bot.engine.reply", run_engine, flow, args.conversations)
    measure("reply + state JSON round trip", run_engine_with_json, flow, args.conversations)
    print(f"ratio engine/baseline: {real / baseline:.3f}")
    verdict = "meets" if real >= 20_000 else "MISSES"
    print(f"target >= 20,000 steps/s: {verdict} ({real:,.0f})")


if __name__ == "__main__":
    main()
