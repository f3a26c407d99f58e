"""Language policy: explicit requests, neutral replies, synonyms, switching, priors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot import language
from bot.language import (
    REPORTABLE_LANGUAGES,
    Detection,
    LinguaDetector,
    RememberingDetector,
    clean_text,
    decide_language,
    default_detector,
    detect,
    explicit_request,
    language_for_phone,
    narrowed,
    prior_language,
    warm,
)

FLOW = ("fi", "sv", "en")
ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- explicit requests


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("suomeksi", "fi"),
        ("Suomeksi kiitos!", "fi"),
        ("suomi", "fi"),
        ("på svenska", "sv"),
        ("På svenska, tack", "sv"),
        ("svenska", "sv"),
        ("ruotsiksi", "sv"),
        ("in English", "en"),
        ("In English please", "en"),
        ("english", "en"),
        ("englanniksi", "en"),
        ("FI", "fi"),
        ("SV", "sv"),
        ("EN", "en"),
        ("sv", "sv"),
        ("fi", "fi"),
        ("/language sv", "sv"),
        ("по-русски", "ru"),
        ("По русски", "ru"),
        ("eesti keeles", "et"),
        ("українською", "uk"),
        ("af soomaali", "so"),
        ("بالعربية", "ar"),
        # Not requests: ordinary replies that merely contain a language word or a code
        ("en", None),  # Finnish "I don't"
        ("et", None),  # Finnish "you don't"
        ("so", None),
        ("suomi on kaunis maa ja palvelu oli hyvää", None),
        ("english books please more of them", None),
        ("4", None),
        ("", None),
    ],
)
def test_explicit_requests(text: str, expected: str | None) -> None:
    assert explicit_request(text) == expected


@pytest.mark.parametrize(
    ("current", "text", "language", "switched"),
    [
        ("fi", "på svenska", "sv", True),
        ("sv", "suomeksi", "fi", True),
        ("fi", "in English", "en", True),
        ("en", "EN", "en", False),  # asking for the current language: explicit, no switch
        ("sv", "FI", "fi", True),
    ],
)
def test_explicit_request_wins(current: str, text: str, language: str, switched: bool) -> None:
    decision = decide_language(current, text, FLOW)
    assert (decision.language, decision.switched, decision.explicit) == (language, switched, True)
    assert decision.unsupported is None


def test_explicit_request_for_a_language_the_flow_lacks_is_reported() -> None:
    decision = decide_language("fi", "по-русски", FLOW)
    assert decision.language == "fi"
    assert not decision.switched
    assert decision.explicit
    assert decision.unsupported == "ru"


def test_explicit_request_for_a_declared_extra_language_switches() -> None:
    decision = decide_language("fi", "eesti keeles", (*FLOW, "et"))
    assert (decision.language, decision.switched, decision.explicit) == ("et", True, True)


# --------------------------------------------------------------------------- neutral replies

NEUTRAL = [
    "", "   ", "4", "10", "ok", "OK", "Ok 👍", "okay", "1 👍", "👍", "😊😊", "❤️", "5/5",
    "7/10", "kk", "hmm", "x", "?", "...", ":)", "Matti", "Helsinki", "Johanna Virtanen",
    "www.hel.fi", "https://palaute.example.fi/kysely/123", "info@example.fi",
    "+358401234567", "14:30", "⭐⭐⭐⭐⭐", "ok 👌", "Netflix",
]  # fmt: skip


@pytest.mark.parametrize("current", FLOW)
@pytest.mark.parametrize("text", NEUTRAL)
def test_neutral_replies_never_switch(current: str, text: str) -> None:
    decision = decide_language(current, text, FLOW)
    assert decision.language == current
    assert not decision.switched
    assert decision.unsupported is None
    assert not decision.explicit


@pytest.mark.parametrize(
    "text", ["4", "ok", "👍", "1 👍", "", "https://example.fi", "12.5.", "+46701234567"]
)
def test_detector_abstains_on_text_without_language(text: str) -> None:
    assert detect(text, FLOW) == Detection(None, 0.0)


# --------------------------------------------------------------------------- switching


@pytest.mark.parametrize(
    ("current", "text", "expected"),
    [
        ("fi", "personalen var väldigt trevlig och hjälpsam", "sv"),
        ("fi", "the nurse was very kind", "en"),
        ("sv", "hoitaja oli tosi ystävällinen", "fi"),
        ("en", "väntetiden var för lång", "sv"),
        ("sv", "kiitos hyvästä palvelusta", "fi"),
    ],
)
def test_confident_reply_in_another_flow_language_switches(
    current: str, text: str, expected: str
) -> None:
    decision = decide_language(current, text, FLOW)
    assert (decision.language, decision.switched, decision.reason) == (expected, True, "detected")
    assert decision.confidence >= 0.8


@pytest.mark.parametrize(
    ("current", "text"),
    [
        ("fi", "tack"),  # one word never switches on detection alone
        ("sv", "kiitos"),
        ("fi", "thanks"),
        ("fi", "kiitos paljon"),  # already the current language
        ("en", "good service"),
    ],
)
def test_short_or_same_language_replies_keep_the_language(current: str, text: str) -> None:
    decision = decide_language(current, text, FLOW)
    assert decision.language == current
    assert not decision.switched


class ScriptedDetector:
    """A detector answering from a table, to test the policy's thresholds exactly."""

    def __init__(self, answers: dict[str, Detection]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def detect(self, text: str, languages: Sequence[str]) -> Detection:
        self.calls.append((text, tuple(languages)))
        if len(languages) > len(FLOW):  # the wide check for unsupported languages
            return Detection(None, 0.0)
        return self.answers.get(text, Detection(None, 0.0))


def test_hysteresis_needs_more_confidence_to_leave_than_to_answer() -> None:
    detector = ScriptedDetector(
        {
            "hej hej du": Detection("sv", 0.75),  # answered (>= 0.70) but below 0.80
            "hej hej där": Detection("sv", 0.85),
        }
    )
    weak = decide_language("fi", "hej hej du", FLOW, detector=detector)
    strong = decide_language("fi", "hej hej där", FLOW, detector=detector)
    assert (weak.language, weak.switched) == ("fi", False)
    assert (strong.language, strong.switched) == ("sv", True)


def test_a_conversation_does_not_flip_flop() -> None:
    """A Swedish speaker in a Finnish flow: one switch, then short replies keep Swedish."""
    language = "fi"
    history = []
    for reply in ["4", "jag är nöjd med servicen", "ok", "5", "tack", "Anna", "👍", "bra"]:
        decision = decide_language(language, reply, FLOW)
        language = decision.language
        history.append(language)
    assert history == ["fi", "sv", "sv", "sv", "sv", "sv", "sv", "sv"]


# --------------------------------------------------------------------------- synonyms


@pytest.mark.parametrize(
    ("current", "text", "synonyms", "language", "switched"),
    [
        ("sv", "kyllä", {"fi"}, "fi", True),  # Finnish only: evidence enough
        ("fi", "kyllä", {"fi"}, "fi", False),
        ("fi", "ja", {"sv"}, "fi", False),  # Swedish, German, Finnish "and": ambiguous
        ("en", "nej", {"sv"}, "en", False),
        ("fi", "joo", {"fi"}, "fi", False),
        ("en", "jättebra", {"sv"}, "sv", True),
        ("fi", "5", {"fi", "sv", "en"}, "fi", False),  # numbers are in every language
        ("sv", "1", {"fi"}, "sv", False),  # a neutral synonym never switches
        ("fi", "ok", {"en"}, "fi", False),
        ("fi", "yes", {"en", "sv"}, "fi", False),  # matched in two languages
        ("en", "yes", {"en"}, "en", False),
    ],
)
def test_option_synonyms_are_evidence(
    current: str, text: str, synonyms: set[str], language: str, switched: bool
) -> None:
    decision = decide_language(current, text, FLOW, synonym_languages=synonyms)
    assert (decision.language, decision.switched) == (language, switched)
    assert decision.unsupported is None


def test_synonym_of_a_language_the_flow_lacks_is_ignored() -> None:
    decision = decide_language("fi", "kyllä", ("sv", "en"), synonym_languages={"fi"})
    assert decision.language == "fi"
    assert not decision.switched


# --------------------------------------------------------------------------- unsupported


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("спасибо большое всё хорошо", "ru"),
        ("спасибо", "ru"),  # one word, but a script no flow language uses
        ("дуже дякую за допомогу", "uk"),
        ("tänan väga kõik oli hästi", "et"),
        ("aad baad u mahadsantihiin", "so"),
        ("شكرا جزيلا على المساعدة", "ar"),
        ("vielen Dank für die Hilfe", "de"),
    ],
)
def test_reply_in_a_language_the_flow_lacks_is_reported(text: str, expected: str) -> None:
    decision = decide_language("fi", text, FLOW)
    assert decision.unsupported == expected
    assert decision.language == "fi"
    assert not decision.switched
    assert not decision.explicit


def test_declared_extra_language_switches_instead_of_being_reported() -> None:
    decision = decide_language("fi", "спасибо большое всё хорошо", (*FLOW, "ru"))
    assert (decision.language, decision.switched, decision.unsupported) == ("ru", True, None)


@pytest.mark.parametrize(
    "text", ["aitäh", "hea", "danke"]
)  # single Latin words: too little to tell the citizen anything
def test_single_latin_word_is_not_reported_as_unsupported(text: str) -> None:
    assert decide_language("fi", text, FLOW).unsupported is None


# --------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "😊" * 500,
        "kiitos " * 5000,
        "a" * 100_000,
        "\x00\x01\x02",
        "𝔨𝔦𝔦𝔱𝔬𝔰",
        "ok" * 3000,
        "中文回复很好",
        "https://" + "x" * 10_000,
    ],
)
def test_detection_and_decision_never_crash(text: str) -> None:
    found = detect(text, FLOW)
    assert found.language in (None, *FLOW)
    assert 0.0 <= found.confidence <= 1.0
    decision = decide_language("sv", text, FLOW)
    assert decision.language in FLOW


def test_long_text_is_cut_before_detection() -> None:
    assert len(clean_text("kiitos " * 5000)) <= 400


def test_one_candidate_language_abstains() -> None:
    assert detect("kiitos hyvä palvelu", ["fi"]) == Detection(None, 0.0)


def test_unknown_codes_are_ignored() -> None:
    assert detect("kiitos hyvä palvelu", ["fi", "sv", "xx"]).language == "fi"


def test_detector_is_built_once_per_language_set() -> None:
    detector = LinguaDetector()
    detector.detect("kiitos hyvä palvelu", ["fi", "sv", "en"])
    detector.detect("tack för hjälpen", ["en", "sv", "fi"])  # same set, other order
    detector.detect("thanks", ["fi", "en"])
    assert sorted(detector._built) == [("en", "fi"), ("en", "fi", "sv")]


def test_warm_builds_flow_and_reporting_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """warm() builds, on the process-wide detector, the flow's own language set and the
    flow's plus the reportable languages (what decide_language asks for), nothing else;
    a second call builds nothing new."""
    monkeypatch.setattr(language, "_default", None)  # a fresh process-wide detector
    warm(["SV", "fi", "en-GB"])  # codes as flows may write them
    detector = default_detector()
    flow_set = ("en", "fi", "sv")
    reporting_set = tuple(sorted({*flow_set, *REPORTABLE_LANGUAGES}))
    assert sorted(detector._built) == sorted([flow_set, reporting_set])
    built = dict(detector._built)
    warm(FLOW)
    assert detector._built == built
    assert all(detector._built[key] is built[key] for key in built)  # the same detectors


def _labelled_texts() -> list[str]:
    folder = ROOT / "tests" / "data" / "language"
    return [
        line
        for path in sorted(folder.glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_narrowing_a_wide_detection_answers_like_detecting_again() -> None:
    """decide_language detects once among the flow's and the reportable languages and
    narrows that to the flow's own: same language and confidence as a second detection."""
    wide = (*FLOW, *(code for code in REPORTABLE_LANGUAGES if code not in FLOW))
    compared = 0
    for text in _labelled_texts():
        from_wide = narrowed(detect(text, wide), text, FLOW)
        if from_wide is None:  # lingua's rules put everything outside the flow's languages
            assert detect(text, wide).language not in FLOW
            continue
        assert from_wide == detect(text, FLOW), text
        compared += 1
    assert compared > 500


def test_narrowing_cannot_tell_when_a_letter_ruled_the_flow_languages_out() -> None:
    wide = (*FLOW, "et")
    assert detect("kõik on hästi", wide).language == "et"
    assert narrowed(detect("kõik on hästi", wide), "kõik on hästi", FLOW) is None
    assert narrowed(Detection("fi", 0.9), "kiitos paljon", FLOW) is None  # no scores given


class _Counting:
    def __init__(self) -> None:
        self.inner = LinguaDetector()
        self.calls = 0

    def detect(self, text: str, languages: Sequence[str]) -> Detection:
        self.calls += 1
        return self.inner.detect(text, languages)


def test_prepared_detections_answer_the_core_without_detecting_again() -> None:
    """The conversation service detects a message's language before it takes the
    database lock (``prepare``); the core's questions are then answered from memory,
    with the same decisions as without preparing."""
    texts = [*_labelled_texts(), "in English please", "på svenska", "4", "OHITA", ""]
    asked_again = 0
    for text in texts:
        counting = _Counting()
        remembering = RememberingDetector(counting)
        remembering.prepare(text, FLOW)
        prepared_calls = counting.calls
        decision = decide_language("fi", text, FLOW, detector=remembering)
        asked_again += counting.calls > prepared_calls
        assert decision == decide_language("fi", text, FLOW, detector=LinguaDetector()), text
    assert asked_again <= len(texts) // 50  # only when narrowing a wide answer cannot tell


def test_same_text_same_answer_in_fresh_processes() -> None:
    texts = ["bra service", "kiitos", "ok tack", "thank you", "jo det var bra", "hyvä"]
    script = (
        "import json, sys\n"
        "from bot.language import detect, decide_language\n"
        "texts = json.loads(sys.argv[1])\n"
        "print(json.dumps([[detect(t, ('fi','sv','en')).__dict__,"
        " decide_language('fi', t, ('fi','sv','en')).__dict__] for t in texts]))\n"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script, json.dumps(texts)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={"PYTHONHASHSEED": str(seed), "PATH": "/usr/bin:/bin"},
        ).stdout
        for seed in (1, 2)
    ]
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])[0][0]["confidence"] > 0


# --------------------------------------------------------------------------- priors, phones


@pytest.mark.parametrize(
    ("number", "language"),
    [
        ("+358401234567", "fi"),
        ("+358 40 123 4567", "fi"),
        ("00358401234567", "fi"),
        ("+3581812345", "sv"),  # Åland
        ("+46701234567", "sv"),
        ("+447911123456", "en"),
        ("+12025550123", "en"),
        ("+3725123456", "et"),
        ("+79161234567", "ru"),
        ("+380501234567", "uk"),
        ("+252612345678", "so"),
        ("+966501234567", "ar"),
        ("+4915112345678", "de"),
        ("0401234567", None),  # national format: no country
        ("", None),
        ("+999123", None),
        ("telegram:12345", None),
    ],
)
def test_language_for_phone(number: str, language: str | None) -> None:
    assert language_for_phone(number) == language


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "fi"),
        ({"phone_country_language": "sv"}, "sv"),
        ({"phone_country_language": "ru"}, "fi"),  # not in the flow: ignored
        ({"channel_hint": "en-GB"}, "en"),
        ({"phone_country_language": "sv", "visit_language": "en"}, "en"),
        ({"visit_language": "en", "contact_language": "sv"}, "sv"),  # sticky wins
        ({"contact_language": "de", "visit_language": "sv"}, "sv"),
        ({"channel_hint": "SV"}, "sv"),
    ],
)
def test_prior_language_strongest_supported_wins(kwargs: dict[str, str], expected: str) -> None:
    assert prior_language("fi", FLOW, **kwargs) == expected
