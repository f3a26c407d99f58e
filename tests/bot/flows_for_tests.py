"""Small flows built in Python, so engine tests do not depend on the YAML loader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.flow import (
    END,
    Branch,
    Condition,
    Flow,
    OnInvalid,
    Op,
    Option,
    ScaleStyle,
    Step,
    StepKind,
    Triggers,
)

NOW = datetime(2026, 5, 14, 9, 12, tzinfo=UTC)


def t(fi: str, sv: str, en: str) -> dict[str, str]:
    return {"fi": fi, "sv": sv, "en": en}


def library_flow(version: str = "v1") -> Flow:
    return Flow(
        id="library",
        version=version,
        title=t("Kirjasto", "Bibliotek", "Library"),
        default_language="fi",
        languages=("fi", "sv", "en"),
        service_points=("kaarina-main-library",),
        expires_after=timedelta(hours=24),
        triggers=Triggers(
            keywords={"fi": ("PALAUTE",), "sv": ("RESPONS",), "en": ("FEEDBACK",)},
            codes={"kirjasto_kaarina_1": "kaarina-main-library"},
        ),
        closing=t("Kiitos palautteesta!", "Tack för din respons!", "Thank you for your feedback!"),
        steps=(
            Step(
                id="welcome",
                kind=StepKind.MESSAGE,
                text=t(
                    "Hei! Kolme lyhyttä kysymystä.",
                    "Hej! Tre korta frågor.",
                    "Hi! Three quick questions.",
                ),
            ),
            Step(
                id="overall",
                kind=StepKind.SCALE,
                text=t(
                    "Miten käyntisi onnistui? Vastaa 1–5.",
                    "Hur gick ditt besök? Svara 1–5.",
                    "How was your visit? Reply 1–5.",
                ),
                max_attempts=2,
                branches=(Branch(when=(Condition("overall", Op.LE, 2),), goto="went_wrong"),),
                next="liked",
            ),
            Step(
                id="went_wrong",
                kind=StepKind.TEXT,
                text=t("Mikä meni pieleen?", "Vad gick fel?", "What went wrong?"),
                max_length=20,
                next="return",
            ),
            Step(
                id="liked",
                kind=StepKind.TEXT,
                optional=True,
                text=t("Mistä pidit?", "Vad tyckte du om?", "What did you like?"),
            ),
            Step(
                id="return",
                kind=StepKind.CHOICE,
                text=t(
                    "Tuletko uudelleen? 1 kyllä, 2 ehkä, 3 en",
                    "Kommer du igen? 1 ja, 2 kanske, 3 nej",
                    "Will you come again? 1 yes, 2 maybe, 3 no",
                ),
                options=(
                    Option("yes", t("Kyllä", "Ja", "Yes"), {"fi": ("joo",), "en": ("sure",)}),
                    Option("maybe", t("Ehkä", "Kanske", "Maybe")),
                    Option("no", t("En", "Nej", "No")),
                ),
                on_invalid=OnInvalid.END,
                max_attempts=2,
                next=END,
            ),
        ),
    )


def smiley_flow() -> Flow:
    return Flow(
        id="poll",
        version="p1",
        title=t("Kysely", "Enkät", "Poll"),
        default_language="en",
        languages=("fi", "sv", "en"),
        closing=t("Kiitos!", "Tack!", "Thanks!"),
        triggers=Triggers(keywords={"en": ("POLL",), "fi": ("KYSELY",), "sv": ("ENKÄT",)}),
        steps=(
            Step(
                id="mood",
                kind=StepKind.SCALE,
                scale_style=ScaleStyle.SMILEY,
                scale_min=1,
                scale_max=4,
                text=t("Miltä tuntui?", "Hur kändes det?", "How did it feel?"),
            ),
            Step(id="nps", kind=StepKind.NPS, text=t("0–10?", "0–10?", "0–10?")),
            Step(
                id="visits",
                kind=StepKind.NUMBER,
                min_value=0,
                max_value=50,
                text=t("Montako kertaa?", "Hur många gånger?", "How many times?"),
            ),
            Step(id="again", kind=StepKind.YES_NO, text=t("Uudestaan?", "Igen?", "Again?")),
        ),
    )


class Catalogue:
    """A minimal in-memory catalogue with the FlowCatalogue protocol."""

    def __init__(self, *flows: Flow) -> None:
        self.flows = {flow.id: flow for flow in flows}

    def get(self, flow_id: str) -> Flow | None:
        return self.flows.get(flow_id)

    def by_keyword(self, text: str) -> Flow | None:
        wanted = text.strip().casefold()
        for flow in self.flows.values():
            for words in flow.triggers.keywords.values():
                if any(word.casefold() == wanted for word in words):
                    return flow
        return None

    def by_code(self, code: str) -> tuple[Flow, str | None] | None:
        for flow in self.flows.values():
            if code in flow.triggers.codes:
                return flow, flow.triggers.codes[code]
        return None

    def typed_code(self, text: str) -> str | None:
        wanted = text.strip().casefold()
        for flow in self.flows.values():
            for code in flow.triggers.codes:
                if code.casefold() == wanted:
                    return code
        return None

    def all(self) -> tuple[Flow, ...]:
        return tuple(self.flows.values())

    def text_of(self, flow: Flow) -> str | None:
        return None  # built in Python: there is no YAML text
