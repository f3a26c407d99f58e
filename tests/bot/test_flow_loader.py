"""Loading flows from YAML: the shipped examples, the model they produce, the catalogue."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.catalogue import Catalogue, read_catalogue
from bot.flow import END, OnInvalid, Op, ScaleStyle, StepKind
from bot.flow_grammar import (
    FLOW,
    FOLLOWUP,
    STEP,
    WINDOW,
    Section,
    parse_duration,
    step_keys,
)
from bot.flow_loader import (
    load_flow_file,
    load_flow_text,
    read_flow_text,
)
from bot.flow_problems import FlowError
from bot.flow_schema import flow_schema
from bot.flow_yaml import FlowYamlLoader

FLOWS = Path(__file__).resolve().parents[2] / "flows"
SCHEMA = Path(__file__).resolve().parents[1] / "data" / "flow.schema.json"
EXAMPLES = sorted(FLOWS.glob("*.yaml"))

SMALL = """\
id: small
title: {fi: Pieni, sv: Liten, en: Small}
languages: [fi, sv, en]
default_language: sv
closing: {fi: Kiitos, sv: Tack, en: Thanks}
steps:
  - id: q1
    type: yes_no
    text: {fi: "Kävitkö?", sv: "Besökte du?", en: "Did you visit?"}
"""


def test_the_examples_are_shipped() -> None:
    assert {p.stem for p in EXAMPLES} >= {"library-visit", "health-centre-fft", "quick-poll"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_load_without_any_problem(path: Path) -> None:
    reading = read_catalogue([FLOWS])
    mine = next(r for r in reading if Path(r.source).name == path.name)
    assert mine.problems == []
    assert mine.flow is not None
    assert set(mine.flow.languages) >= {"fi", "sv", "en"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_conform_to_the_json_schema(path: Path) -> None:
    import yaml

    document = yaml.load(path.read_text(encoding="utf-8"), Loader=FlowYamlLoader)
    jsonschema.Draft202012Validator(flow_schema()).validate(document)


def test_the_schema_is_valid_and_rejects_typos() -> None:
    import yaml

    schema = flow_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    document = yaml.load(SMALL.replace("closing:", "closng:"), Loader=FlowYamlLoader)
    messages = [error.message for error in validator.iter_errors(document)]
    assert any("'closng' was unexpected" in m for m in messages)
    assert any("'closing' is a required property" in m for m in messages)
    scale_with_options = yaml.load(
        SMALL.replace("type: yes_no", "type: scale\n    options: []"), Loader=FlowYamlLoader
    )
    assert list(validator.iter_errors(scale_with_options))


def test_the_schema_output_is_unchanged() -> None:
    """`palaute flows schema` prints exactly the saved schema (editors and CI may cache it).

    When a change to the grammar is meant to change the schema, regenerate the file with
    `palaute flows schema > tests/data/flow.schema.json` and review the diff.
    """
    printed = json.dumps(flow_schema(), indent=2, ensure_ascii=False) + "\n"
    assert printed == SCHEMA.read_text(encoding="utf-8")


def _documented_default(section: Section, name: str) -> Any:
    return next(key for key in section.keys if key.name == name).value["default"]


def test_the_grammar_defaults_are_the_models() -> None:
    """The defaults the schema documents are the ones a flow without the key gets."""
    flow = load_flow_text(SMALL.replace("steps:", "followup: {}\nsteps:"))
    rule = flow.followup
    assert rule is not None
    durations = [
        (FLOW, "expires_after", flow.expires_after),
        (FOLLOWUP, "delay", rule.delay),
        (FOLLOWUP, "give_up_after", rule.give_up_after),
        (FOLLOWUP, "frequency_cap", rule.frequency_cap),
    ]
    for section, name, value in durations:
        assert parse_duration(_documented_default(section, name)) == value, name
    assert _documented_default(WINDOW, "start") == rule.window.start
    assert _documented_default(WINDOW, "end") == rule.window.end
    scale = load_flow_text(SMALL.replace("type: yes_no", "type: scale")).steps[0]
    assert _documented_default(STEP, "scale") == f"{scale.scale_min}-{scale.scale_max}"
    text = load_flow_text(SMALL.replace("type: yes_no", "type: text")).steps[0]
    assert _documented_default(STEP, "max_length") == text.max_length


@pytest.mark.parametrize("kind", list(StepKind))
def test_every_step_type_takes_only_grammar_keys(kind: StepKind) -> None:
    assert set(step_keys(kind)) <= set(STEP.names)
    assert set(STEP.required) <= set(step_keys(kind))


def test_library_visit_model() -> None:
    flow = load_flow_file(FLOWS / "library-visit.yaml")
    assert flow.id == "library-visit"
    assert flow.title["sv"] == "Biblioteksbesök"
    assert flow.default_language == "fi"
    assert flow.expires_after == timedelta(hours=24)
    assert flow.triggers.keywords["fi"] == ("KIRJASTO", "PALAUTE")
    assert flow.triggers.codes == {
        "kirjasto_kaarina": "kaarina-main-library",
        "kirjasto_piikkio": "piikkio-library",
    }
    overall = flow.step("overall")
    assert (overall.kind, overall.scale_min, overall.scale_max) == (StepKind.SCALE, 1, 5)
    assert (overall.max_attempts, overall.on_invalid, overall.metric) == (
        2,
        OnInvalid.END,
        "csat",
    )
    (branch,) = overall.branches
    assert branch.goto == "what_went_wrong"
    assert [(c.step, c.op, c.value) for c in branch.when] == [("overall", Op.LE, 2)]
    assert overall.next == "what_liked"
    assert overall.line == 31
    assert flow.step("what_went_wrong").optional
    reason = flow.step("visit_reason")
    # `all:` words count in every language.
    assert all("1" in reason.options[0].synonyms[lang] for lang in ("fi", "sv", "en"))
    assert "lainaus" in reason.options[0].synonyms["fi"]


def test_health_centre_fft_model() -> None:
    flow = load_flow_file(FLOWS / "health-centre-fft.yaml")
    experience = flow.step("experience")
    assert experience.kind is StepKind.CHOICE
    assert [(o.id, o.score) for o in experience.options] == [
        ("very_good", 5),
        ("good", 4),
        ("neither", 3),
        ("poor", 2),
        ("very_poor", 1),
        ("dont_know", None),
    ]
    assert [o.synonyms["en"][0] for o in experience.options] == ["1", "2", "3", "4", "5", "6"]
    assert experience.options[5].label == {
        "fi": "En osaa sanoa",
        "sv": "Vet inte",
        "en": "Don't know",
    }
    why = flow.step("why")
    assert why.branches[0].when[0].value == ("poor", "very_poor")
    assert why.next == END
    assert flow.followup is not None
    assert flow.followup.delay == timedelta(hours=2)
    assert flow.followup.window.days == (0, 1, 2, 3, 4, 5)
    assert (flow.followup.window.start, flow.followup.window.end) == ("09:00", "20:00")
    assert flow.followup.reminder_after == timedelta(hours=24)
    assert flow.followup.give_up_after == timedelta(days=3)
    assert flow.followup.frequency_cap == timedelta(days=30)
    assert flow.triggers.codes == {"terveysasema_kaarina": None}


def test_quick_poll_is_a_four_face_scale() -> None:
    mood = load_flow_file(FLOWS / "quick-poll.yaml").step("mood")
    assert (mood.scale_style, mood.scale_min, mood.scale_max) == (ScaleStyle.SMILEY, 1, 4)


def test_version_is_the_hash_of_the_text_and_text_loading_works() -> None:
    flow = load_flow_text(SMALL, source="db:small@1")
    assert flow.version == hashlib.sha256(SMALL.encode()).hexdigest()[:16]
    assert flow.source == "db:small@1"
    edited = load_flow_text(SMALL.replace("Besökte du?", "Var du här?"))
    assert edited.version != flow.version
    assert load_flow_text(SMALL).version == flow.version


def test_a_broken_flow_raises_with_every_error() -> None:
    broken = SMALL.replace("default_language: sv", "default_language: de").replace(
        "type: yes_no", "type: yesno"
    )
    with pytest.raises(FlowError) as caught:
        load_flow_text(broken, source="x.yaml")
    assert not caught.value.retryable
    assert len(caught.value.problems) == 2
    assert "x.yaml:4:19: error: default_language" in str(caught.value)
    assert "x.yaml:8:11: error: steps[0].type: unknown step type 'yesno'" in str(caught.value)


@pytest.mark.parametrize(
    "text",
    ["", "# only a comment\n", "- a list\n", "just text", "id: [unclosed\n", "\x00"],
)
def test_odd_input_gives_problems_not_crashes(text: str) -> None:
    reading = read_flow_text(text)
    assert reading.flow is None
    assert reading.errors


def test_single_language_flow_may_use_plain_texts() -> None:
    text = (
        "id: fi-only\ntitle: Testi\nlanguages: [fi]\ndefault_language: fi\nclosing: Kiitos\n"
        "steps:\n  - {id: q1, type: nps, text: 'Suosittelisitko?'}\n"
    )
    flow = load_flow_text(text)
    assert flow.steps[0].text == {"fi": "Suosittelisitko?"}
    assert (flow.steps[0].scale_min, flow.steps[0].scale_max) == (0, 10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("30m", timedelta(minutes=30)),
        ("90min", timedelta(minutes=90)),
        ("1d 12h", timedelta(days=1, hours=12)),
        ("2w", timedelta(weeks=2)),
        ("24 hours", None),
        ("h", None),
        ("", None),
    ],
)
def test_durations(text: str, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


def test_catalogue_finds_flows_by_id_keyword_and_code() -> None:
    catalogue = Catalogue.load(FLOWS)
    assert len(catalogue) == len(EXAMPLES)
    library = catalogue.get("library-visit")
    assert library is not None
    assert catalogue.by_keyword("palaute") is library
    assert catalogue.by_keyword("  Feedback! ") is library
    assert catalogue.keyword("RESPONS") == (library, "sv")
    assert catalogue.by_keyword("palaute kiitos") is None  # a keyword is the whole message
    assert catalogue.by_code("kirjasto_piikkio") == (library, "piikkio-library")
    fft = catalogue.get("health-centre-fft")
    # A flow with one service point: its codes stand for that point.
    assert catalogue.by_code("terveysasema_kaarina") == (fft, "kaarina-health-centre")
    assert catalogue.by_code("nope") is None
    assert catalogue.get("nope") is None
    assert {f.id for f in catalogue.all()} == {p.stem for p in EXAMPLES}
    text = catalogue.text_of(library)
    assert text == (FLOWS / "library-visit.yaml").read_text(encoding="utf-8")
    assert load_flow_text(text).version == library.version
    assert Catalogue([library]).text_of(library) is None


def test_catalogue_refuses_a_folder_with_errors(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(SMALL)
    (tmp_path / "bad.yaml").write_text(SMALL.replace("id: small", "id: other").replace("q1", "Q 1"))
    with pytest.raises(FlowError) as caught:
        Catalogue.load(tmp_path)
    assert "bad.yaml:7:9: error: steps[0].id: step id 'Q 1'" in str(caught.value)


def test_a_question_mark_inside_braces_gets_a_useful_hint() -> None:
    (problem,) = read_flow_text(SMALL.replace('"Kävitkö?"', "Kävitkö?")).problems
    assert (problem.line, problem.column) == (9, 23)
    assert "put texts that contain , ? : or # in quotes" in problem.hint
