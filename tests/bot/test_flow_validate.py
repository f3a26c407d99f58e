"""Broken flows: every problem is reported with file:line, the field and a fix hint.

Each case is a small flow file. The line marked ``# <-`` is where the problem must be
reported; the test checks that exact line, the field path, and words of the message
and of the hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest

from bot.catalogue import read_catalogue
from bot.flow_loader import read_flow_text
from bot.flow_problems import Problem, Severity

HEAD = """\
id: test-flow
title: {fi: Testi, sv: Test, en: Test}
languages: [fi, sv, en]
default_language: fi
closing: {fi: Kiitos, sv: Tack, en: Thanks}
"""


@dataclass(frozen=True)
class Case:
    name: str
    yaml: str
    path: str
    message: str
    hint: str
    severity: Severity = Severity.ERROR


def flow(steps: str, head: str = HEAD) -> str:
    return head + "steps:\n" + dedent(steps).strip("\n") + "\n"


CASES = [
    Case(
        "yaml syntax: unclosed quote",
        flow("""
          - id: q1
            type: text
            text: {fi: "Mitä, sv: Vad, en: What}   # <-
        """),
        "(YAML syntax)",
        "invalid YAML",
        "quote",
    ),
    Case(
        "yaml syntax: tab indentation",
        HEAD + "steps:\n  - id: q1\n\ttype: text   # <-\n",
        "(YAML syntax)",
        "invalid YAML",
        "spaces, not tabs",
    ),
    Case(
        "yaml syntax: colon in an unquoted text",
        flow("""
          - id: q1
            type: text
            text:
              fi: Huom: kerro lisää   # <-
              sv: Berätta
              en: Tell us
        """),
        "(YAML syntax)",
        "mapping values are not allowed",
        "quotes around a text that contains ': '",
    ),
    Case(
        "yaml syntax: a text that starts with @",
        HEAD.replace("closing:", "description: @kirjasto   # <-\nclosing:")
        + "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "(YAML syntax)",
        "found character '@' that cannot start any token",
        "put quotes around texts that start with @",
    ),
    Case(
        "yaml syntax: a list that is never closed, reported where it opens",
        HEAD.replace("[fi, sv, en]", "[fi, sv, en   # <-")
        + "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "(YAML syntax)",
        "the `[` opened at 3:12 is not closed before 4:",
        "add the missing `]`",
    ),
    Case(
        "yaml syntax: a mapping still open at the end of the file",
        HEAD + "steps:\n  - id: q1\n    type: text\n    text: {fi: a, sv: a, en: a   # <-\n",
        "(YAML syntax)",
        "the `{` opened at 9:11 is never closed",
        "add the missing `}`",
    ),
    Case(
        "yaml syntax: a multi-line list that is closed stays reported at the problem",
        HEAD + "service_points: [a,\n  b: c: d]   # <-\n"
        "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "(YAML syntax)",
        "expected ',' or ']', but got ':'",
        "put texts that contain , ? : or # in quotes",
    ),
    Case(
        "yaml syntax: a line without `key:`, reported at that line, not the next",
        flow("""
          - id: q1
            type: text
            text: {fi: a, sv: a, en: a}
            optional   # <-
            note: x
        """),
        "(YAML syntax)",
        "has no `:` after it",
        "each line needs `key: value`",
    ),
    Case(
        "unknown top-level key",
        HEAD.replace("closing:", "titel: {fi: x}  # <-\nclosing:")
        + "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "titel",
        "unknown key `titel`",
        "Did you mean 'title'?",
    ),
    Case(
        "unknown step key",
        flow("""
          - id: q1
            type: text
            optinal: true   # <-
            text: {fi: a, sv: a, en: a}
        """),
        "steps[0].optinal",
        "unknown key `optinal`",
        "Did you mean 'optional'?",
    ),
    Case(
        "a key of another step type",
        flow("""
          - id: q1
            type: scale
            max_length: 100   # <-
            text: {fi: a, sv: a, en: a}
        """),
        "steps[0].max_length",
        "not used by scale steps (only by text)",
        "remove `max_length`",
    ),
    Case(
        "wrong type",
        flow("""
          - id: q1
            type: text
            max_attempts: two   # <-
            text: {fi: a, sv: a, en: a}
        """),
        "steps[0].max_attempts",
        "should be a whole number, not a text",
        "without quotes",
    ),
    Case(
        "unknown step type",
        flow("""
          - id: q1
            type: scael   # <-
            text: {fi: a, sv: a, en: a}
        """),
        "steps[0].type",
        "unknown step type 'scael'",
        "Did you mean 'scale'?",
    ),
    Case(
        "missing required field",
        flow("""
          - id: q1   # <-
            type: text
        """),
        "steps[0]",
        "missing `text`",
        "add `text:`",
    ),
    Case(
        "missing translation",
        flow("""
          - id: q1
            type: text
            text: {fi: a, en: a}   # <-
        """),
        "steps[0].text",
        "missing sv translation of the question",
        "add `sv: ...`",
    ),
    Case(
        "text in an undeclared language",
        flow("""
          - id: q1
            type: text
            text: {fi: a, sv: a, en: a,
                   de: a}   # <-
        """),
        "steps[0].text.de",
        "'de' is not in `languages`",
        "add de to `languages`",
        Severity.WARNING,
    ),
    Case(
        "default language not declared",
        HEAD.replace("default_language: fi", "default_language: se  # <-")
        + "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "default_language",
        "default_language 'se' is not in `languages`",
        "use one of: fi, sv, en, or add se to `languages`",
    ),
    Case(
        "given twice (YAML would silently keep the second)",
        flow("""
          - id: q1
            type: text
            text: {fi: a, sv: a, en: a}
            type: scale   # <-
        """),
        "steps[0].type",
        "`type` is given twice",
        "remove one of them",
    ),
    Case(
        "reference to an unknown step",
        flow("""
          - id: overall
            type: scale
            text: {fi: a, sv: a, en: a}
            next: overal   # <-
        """),
        "steps[0].next",
        "there is no step 'overal'",
        "Did you mean 'overall'?",
    ),
    Case(
        "unreachable step",
        flow("""
          - id: q1
            type: text
            text: {fi: a, sv: a, en: a}
            next: end
          - id: q2   # <-
            type: text
            text: {fi: b, sv: b, en: b}
        """),
        "steps[1]",
        "step 'q2' can never be reached",
        "point a `next`/`goto` at it",
    ),
    Case(
        "a loop",
        flow("""
          - id: q1
            type: text
            text: {fi: a, sv: a, en: a}
          - id: q2
            type: yes_no
            text: {fi: b, sv: b, en: b}
            next:
              - if: {q2: {eq: 'yes'}}
                goto: q1   # <-
              - goto: end
        """),
        "steps[1].next[0].goto",
        "can loop forever: q1 → q2 → q1",
        "a survey must always finish",
    ),
    Case(
        "duplicate step id",
        flow("""
          - id: q1
            type: text
            text: {fi: a, sv: a, en: a}
          - id: q1   # <-
            type: text
            text: {fi: b, sv: b, en: b}
        """),
        "steps[1].id",
        "step id 'q1' is already used by steps[0]",
        "its own id",
    ),
    Case(
        "reserved step id",
        flow("""
          - id: end   # <-
            type: text
            text: {fi: a, sv: a, en: a}
        """),
        "steps[0].id",
        "`end` is reserved",
        "choose another id",
    ),
    Case(
        "duplicate option id",
        flow("""
          - id: q1
            type: choice
            text: {fi: a, sv: a, en: a}
            options:
              - {id: good, label: {fi: Hyvä, sv: Bra, en: Good}}
              - {id: good, label: {fi: Huono, sv: Dålig, en: Bad}}   # <-
        """),
        "steps[0].options[1].id",
        "option id 'good' is already used by options[0]",
        "its own id",
    ),
    Case(
        "synonyms collide in one language",
        flow("""
          - id: q1
            type: choice
            text: {fi: a, sv: a, en: a}
            options:
              - id: good
                label: {fi: Hyvä, sv: Bra, en: Good}
                synonyms: {fi: [ok, jees]}
              - id: neutral
                label: {fi: Neutraali, sv: Neutral, en: Neutral}
                synonyms: {fi: [sama, OK!]}   # <-
        """),
        "steps[0].options[1].synonyms.fi[1]",
        "'ok' is accepted for both 'good' and 'neutral' in fi",
        "remove it from one of them",
    ),
    Case(
        "a label collides with another option's synonym",
        flow("""
          - id: q1
            type: choice
            text: {fi: a, sv: a, en: a}
            options:
              - id: yes_please
                label: {fi: Kyllä, sv: Ja, en: Yes}
              - id: maybe
                label: {fi: Ehkä, sv: Kanske, en: Maybe}
                synonyms: {en: [maybe, "yes"]}   # <-
        """),
        "steps[0].options[1].synonyms.en[1]",
        "'yes' is accepted for both 'yes_please' and 'maybe' in en",
        "each word may choose only one option",
    ),
    Case(
        "a synonym means different options in different languages",
        flow("""
          - id: q1
            type: choice
            text: {fi: a, sv: a, en: a}
            options:
              - id: good
                label: {fi: Hyvä, sv: Bra, en: Good}
                synonyms: {sv: [fin]}
              - id: finnish
                label: {fi: Suomi, sv: Finska, en: Finnish}
                synonyms: {en: [fin]}   # <-
        """),
        "steps[0].options[1].synonyms.en[0]",
        "'fin' means different options in different languages (good in sv, finnish in en)",
        "a citizen writing in fi gets asked again",
        Severity.WARNING,
    ),
    Case(
        "a synonym listed twice",
        flow("""
          - id: q1
            type: choice
            text: {fi: a, sv: a, en: a}
            options:
              - {id: go_on, label: {fi: Jatka, sv: Fortsätt, en: Go on}}
              - id: halt
                label: {fi: Seis, sv: Halt, en: Halt}
                synonyms:
                  en: [wait, Wait!]   # <-
        """),
        "steps[0].options[1].synonyms.en[1]",
        "'Wait!' is listed twice for en",
        "remove one",
        Severity.WARNING,
    ),
    Case(
        "the text names another range than the scale",
        flow("""
          - id: q1
            type: scale
            scale: smiley-4
            text:
              fi: "Miten meni? Vastaa 1-4."
              sv: "Hur gick det? Svara 1-5."   # <-
              en: "How was it? Reply 1-4."
        """),
        "steps[0].text.sv",
        "the text says '1-5', but the answers are 1-4",
        "write 1-4 in the text, or fix the scale",
        Severity.WARNING,
    ),
    Case(
        "an optional question that does not say how to skip",
        flow("""
          - id: q1
            type: text
            optional: true
            text:
              fi: "Kerro lisää tai vastaa OHITA."
              sv: "Berätta mer eller svara HOPPA ÖVER."
              en: "Tell us more."   # <-
        """),
        "steps[0].text.en",
        "the question is optional but does not say how to skip it",
        'add e.g. "or reply SKIP" to the en text',
        Severity.WARNING,
    ),
    Case(
        "a synonym that is an opt-out word",
        flow("""
          - id: q1
            type: choice
            text: {fi: a, sv: a, en: a}
            options:
              - {id: go_on, label: {fi: Jatka, sv: Fortsätt, en: Go on}}
              - id: halt
                label: {fi: Seis, sv: Halt, en: Halt}
                synonyms: {en: [stop]}   # <-
        """),
        "steps[0].options[1].synonyms.en[0]",
        "'stop' stops all messages (opt-out)",
        "use another word",
    ),
    Case(
        "condition on a step asked later",
        flow("""
          - id: q1
            type: scale
            text: {fi: a, sv: a, en: a}
            next:
              - if: {q2: {answered: true}}   # <-
                goto: end
          - id: q2
            type: text
            text: {fi: b, sv: b, en: b}
        """),
        "steps[0].next[0].if.q2",
        "step 'q2' is never asked before 'q1'",
        "one asked earlier",
    ),
    Case(
        "condition on an unknown step",
        flow("""
          - id: overall
            type: scale
            text: {fi: a, sv: a, en: a}
            next:
              - if: {overal: {le: 2}}   # <-
                goto: end
          - id: q2
            type: text
            text: {fi: b, sv: b, en: b}
        """),
        "steps[0].next[0].if.overal",
        "the condition uses step 'overal', which does not exist",
        "Did you mean 'overall'?",
    ),
    Case(
        "impossible value on a scale",
        flow("""
          - id: overall
            type: scale
            scale: 1-5
            text: {fi: a, sv: a, en: a}
            next:
              - if:
                  overall:
                    lt: 1   # <-
                goto: end
          - id: q2
            type: text
            text: {fi: b, sv: b, en: b}
        """),
        "steps[0].next[0].if.overall.lt",
        "`lt: 1` can never hold: 'overall' is answered with 1–5",
        "a value within 1–5",
    ),
    Case(
        "a condition that always holds",
        flow("""
          - id: overall
            type: scale
            text: {fi: a, sv: a, en: a}
            next:
              - if:
                  overall:
                    le: 5   # <-
                goto: q2
          - id: q2
            type: text
            text: {fi: b, sv: b, en: b}
        """),
        "steps[0].next[0].if.overall.le",
        "`le: 5` holds for every answer (1–5)",
        "drop the condition",
        Severity.WARNING,
    ),
    Case(
        "unknown option in a condition",
        flow("""
          - id: q1
            type: choice
            text: {fi: a, sv: a, en: a}
            options:
              - {id: very_poor, label: {fi: a, sv: a, en: a}}
              - {id: poor, label: {fi: b, sv: b, en: b}}
            next:
              - if:
                  q1:
                    in: [poor, very_por]   # <-
                goto: q2
              - goto: end
          - id: q2
            type: text
            text: {fi: b, sv: b, en: b}
        """),
        "steps[0].next[0].if.q1.in",
        "'q1' has no option 'very_por'",
        "Did you mean 'very_poor'?",
    ),
    Case(
        "comparing a free-text answer",
        flow("""
          - id: q1
            type: text
            text: {fi: a, sv: a, en: a}
            next:
              - if:
                  q1:
                    eq: hello   # <-
                goto: q2
          - id: q2
            type: text
            text: {fi: b, sv: b, en: b}
        """),
        "steps[0].next[0].if.q1.eq",
        "'q1' is a free-text answer: `eq` cannot test it",
        "use `answered: true`",
    ),
    Case(
        "unknown test",
        flow("""
          - id: q1
            type: scale
            text: {fi: a, sv: a, en: a}
            next:
              - if:
                  q1:
                    lte: 2   # <-
                goto: end
          - id: q2
            type: text
            text: {fi: b, sv: b, en: b}
        """),
        "steps[0].next[0].if.q1.lte",
        "unknown test `lte`",
        "Did you mean 'le'?",
    ),
    Case(
        "a branch after the default is never used",
        flow("""
          - id: q1
            type: scale
            text: {fi: a, sv: a, en: a}
            next:
              - goto: q2
              - if: {q1: {le: 2}}   # <-
                goto: end
          - id: q2
            type: text
            text: {fi: b, sv: b, en: b}
        """),
        "steps[0].next[1]",
        "this branch is never used",
        "move the branch without `if` to the end",
    ),
    Case(
        "bad duration",
        HEAD + "expires_after: 24 hours   # <-\n"
        "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "expires_after",
        "'24 hours' is not a duration",
        "30m, 2h, 24h, 3d or 1w",
    ),
    Case(
        "a start code with spaces",
        HEAD + "triggers:\n  codes: [kirjasto kaarina]   # <-\n"
        "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "triggers.codes[0]",
        "start code 'kirjasto kaarina' has characters that are not allowed",
        "letters A-Z a-z, digits, _ and -",
    ),
    Case(
        "a start code for an unknown service point",
        HEAD + "service_points: [kaarina-main-library]\ntriggers:\n  codes:\n"
        "    - code: k1\n      service_point: kaarina-main-libary   # <-\n"
        "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "triggers.codes[0].service_point",
        "service point 'kaarina-main-libary' is not in `service_points`",
        "did you mean 'kaarina-main-library'?",
    ),
    Case(
        "a start code in a language the flow does not have",
        HEAD + "triggers:\n  codes:\n"
        "    - {code: k1, language: sw}   # <-\n"
        "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "triggers.codes[0].language",
        "language 'sw' is not in `languages`",
        "use one of: fi, sv, en",
    ),
    Case(
        "a start keyword that is a help word",
        HEAD + "triggers:\n  keywords:\n    fi: [APUA]   # <-\n"
        "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "triggers.keywords.fi[0]",
        "start keyword 'APUA' already asks for help",
        "choose another keyword",
    ),
    Case(
        "follow-up window ends before it starts",
        HEAD + "followup:\n  window: {start: '20:00', end: '09:00'}   # <-\n"
        "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "followup.window",
        "the window ends (09:00) before it starts (20:00)",
        "make `end` later than `start`",
    ),
    Case(
        "a reminder without reminder_after",
        HEAD + "followup:\n  reminder: {fi: a, sv: b, en: c}   # <-\n"
        "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "followup.reminder",
        "the reminder is never sent: `reminder_after` is missing",
        "add e.g. `reminder_after: 24h`",
        Severity.WARNING,
    ),
    Case(
        "unknown weekday",
        HEAD + "followup:\n  window:\n    days: [mon, tue, wen]   # <-\n"
        "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n",
        "followup.window.days[2]",
        "unknown day 'wen'",
        "Did you mean 'wed'?",
    ),
]


def marked_line(text: str) -> int:
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if "# <-" in line]
    assert len(lines) == 1, "mark exactly one line with # <-"
    return lines[0]


def find(problems: list[Problem], path: str, message: str) -> Problem:
    for problem in problems:
        if problem.path == path and message in problem.message:
            return problem
    listing = "\n".join(p.format() for p in problems)
    raise AssertionError(f"no problem at {path} with {message!r}; got:\n{listing}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_problem_is_reported_at_its_line_with_field_and_hint(case: Case) -> None:
    reading = read_flow_text(case.yaml, source="flows/broken.yaml")
    problem = find(reading.problems, case.path, case.message)
    assert problem.source == "flows/broken.yaml"
    assert problem.line == marked_line(case.yaml)
    assert case.hint in problem.hint
    assert problem.severity is case.severity
    assert problem.format().startswith(f"flows/broken.yaml:{problem.line}:{problem.column}: ")
    if case.severity is Severity.ERROR:
        assert reading.flow is None
    else:
        assert reading.flow is not None, [p.format() for p in reading.errors]


def test_columns_point_at_the_field() -> None:
    text = flow("""
      - id: q1
        type: text
        text: {fi: a, sv: a, en: a}
        next: nowhere
    """)
    problem = find(read_flow_text(text).problems, "steps[0].next", "there is no step")
    line = text.splitlines()[problem.line - 1]
    assert line[problem.column - 1 :] == "nowhere"
    unknown = find(
        read_flow_text(text.replace("type: text", "tpye: text")).problems,
        "steps[0].tpye",
        "unknown key",
    )
    assert unknown.column == 3  # the key itself, under `- `


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        # The example: an unclosed `[` on line 4 was reported at 5:6.
        (
            "id: x\ntitle: T\nlanguages: [fi]\nlanguages: [fi, sv\nsteps: []\n",
            4,
            12,
            "the `[` opened at 4:12 is not closed before 5:6 (expected ',' or ']', but got ':')",
        ),
        ('id: x\ntitle: "abc\nclosing: y\n', 2, 8, 'the `"` opened at 2:8 is never closed'),
        ("id: x\ntitle: {fi: a\n", 2, 8, "the `{` opened at 2:8 is never closed"),
        # A `?` inside braces on one line: the problem is the `?`, not the brace.
        ("id: x\ntitle: {fi: Mitä?, sv: x}\n", 2, 17, "expected ',' or '}', but got '?'"),
        # The start of the enclosing block would not help: the misindented line would.
        ("id: x\ntitle:\n  fi: a\n sv: b\n", 4, 2, "expected <block end>"),
    ],
)
def test_yaml_syntax_errors_point_where_the_problem_began(
    text: str, line: int, column: int, message: str
) -> None:
    (problem,) = read_flow_text(text).problems
    assert (problem.line, problem.column) == (line, column)
    assert message in problem.message


def test_every_problem_is_reported_not_only_the_first() -> None:
    text = flow("""
      - id: q1
        type: scale
        text: {fi: a, en: a}
        max_attempts: 0
        next: q9
      - id: q1
        type: txt
        text: {fi: b, sv: b, en: b}
    """)
    reading = read_flow_text(text, "x.yaml")
    messages = [p.message for p in reading.errors]
    assert any("missing sv translation" in m for m in messages)
    assert any("should be at least 1" in m for m in messages)
    assert any("there is no step 'q9'" in m for m in messages)
    assert any("unknown step type 'txt'" in m for m in messages)
    assert [p.line for p in reading.problems] == sorted(p.line for p in reading.problems)


def test_yes_no_and_times_stay_text() -> None:
    """YAML 1.1 would read `no` as false and 9:30 as 570; flows use YAML 1.2 rules."""
    text = (
        HEAD.replace("[fi, sv, en]", "[fi, sv, en, no]")
        .replace("{fi: Testi, sv: Test, en: Test}", "{fi: Testi, sv: Test, en: Test, no: Test}")
        .replace("en: Thanks}", "en: Thanks, no: Takk}")
        + "followup:\n  window: {start: 9:30, end: '18:00'}\n"
        + "steps:\n  - id: q1\n    type: choice\n"
        + "    text: {fi: a, sv: a, en: a, no: a}\n    options:\n"
        + "      - {id: y, label: {fi: K, sv: J, en: Y, no: J}, synonyms: {en: [yes, on]}}\n"
        + "      - {id: n, label: {fi: E, sv: N, en: N, no: N}, synonyms: {en: [no, off]}}\n"
    )
    reading = read_flow_text(text)
    assert reading.flow is not None, [p.format() for p in reading.problems]
    assert reading.flow.languages == ("fi", "sv", "en", "no")
    assert reading.flow.steps[0].options[0].synonyms["en"] == ("yes", "on")
    assert reading.flow.steps[0].options[1].synonyms["en"] == ("no", "off")
    assert reading.flow.followup is not None
    assert reading.flow.followup.window.start == "9:30"


def test_duplicate_keywords_and_codes_across_flows(tmp_path: Path) -> None:
    folder = tmp_path
    first = HEAD + (
        "triggers:\n  keywords: {fi: [PALAUTE]}\n  codes: [desk1]\n"
        "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n"
    )
    second = first.replace("id: test-flow", "id: other-flow").replace("[PALAUTE]", "[palaute!]")
    (folder / "a.yaml").write_text(first)
    (folder / "b.yaml").write_text(second)
    readings = read_catalogue([folder])
    assert readings[0].flow is not None
    assert readings[1].flow is None
    problems = {p.path: p for p in readings[1].problems}
    keyword = problems["triggers.keywords.fi[0]"]
    assert keyword.line == 7
    assert "start keyword 'palaute!' also starts" in keyword.message
    assert keyword.message.endswith("a.yaml")
    code = problems["triggers.codes[0]"]
    assert (code.line, "start code 'desk1' also starts") == (8, code.message[:30])


def test_duplicate_flow_ids_across_files(tmp_path: Path) -> None:
    folder = tmp_path
    text = HEAD + "steps:\n  - {id: q1, type: text, text: {fi: a, sv: a, en: a}}\n"
    (folder / "a.yaml").write_text(text)
    (folder / "b.yaml").write_text(text)
    second = read_catalogue([folder])[1]
    (problem,) = second.errors
    assert (problem.line, problem.path) == (1, "id")
    assert "flow id 'test-flow' is also used by" in problem.message


def test_graph_checks_run_even_when_the_id_and_a_goto_are_broken() -> None:
    text = HEAD.replace("id: test-flow", "id: Test Flow") + dedent("""\
        steps:
          - id: overall
            type: scale
            scale: 1-4
            text: {fi: a, sv: a, en: a}
            next:
              - if: {overall: {le: 0}}
                goto: what_wrong
              - goto: liked
          - id: liked
            type: text
            text: {fi: b, sv: b, en: b}
            next: overall
        """)
    reading = read_flow_text(text, "x.yaml")
    found = {(p.line, p.path): p.message for p in reading.errors}
    assert found[(1, "id")].startswith("flow id 'Test Flow' has characters")
    assert found[(13, "steps[0].next[0].goto")] == "there is no step 'what_wrong'"
    assert found[(12, "steps[0].next[0].if.overall.le")].startswith("`le: 0` can never hold")
    assert "loop forever: overall → liked → overall" in found[(18, "steps[1].next")]
