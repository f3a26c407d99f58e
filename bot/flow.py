"""The flow model: what a survey is, independent of YAML, storage and channels.

A flow is immutable once loaded. ``bot.flow_loader`` builds it from YAML and
checks it; the engine (``bot.engine``) only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

# A text in every language the flow declares: {"fi": "...", "sv": "...", "en": "..."}.
Texts = dict[str, str]

END = "end"  # the reserved step id that ends a run


class StepKind(StrEnum):
    MESSAGE = "message"  # says something, expects no answer
    CHOICE = "choice"  # one of several options
    SCALE = "scale"  # 1..N (numeric) or a smiley scale
    NPS = "nps"  # 0..10, "how likely are you to recommend"
    YES_NO = "yes_no"
    TEXT = "text"  # free comment
    NUMBER = "number"  # an integer within min..max


class ScaleStyle(StrEnum):
    NUMERIC = "numeric"  # "1-5": replies 1..5, words and faces accepted too
    SMILEY = "smiley"  # 4 or 5 faces as on feedback terminals


class OnInvalid(StrEnum):
    SKIP = "skip"  # record the step as skipped and go on
    END = "end"  # close the run as incomplete


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    NOT_IN = "not_in"
    ANSWERED = "answered"  # value is True/False: the step got a valid answer
    SKIPPED = "skipped"  # value is True/False: the step was skipped or failed


@dataclass(frozen=True)
class Option:
    """One answer of a choice step (also used for yes/no and scale labels)."""

    id: str
    label: Texts
    # Words accepted for this option, per language ("kyllä", "joo", "1" ...).
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Numeric value for metrics (e.g. Friends-and-Family: very_good=5 ... very_poor=1);
    # None for options that do not score (e.g. "don't know").
    score: int | None = None


@dataclass(frozen=True)
class Condition:
    step: str
    op: Op
    value: int | str | bool | tuple[int | str, ...]


@dataclass(frozen=True)
class Branch:
    """Go to ``goto`` when every condition holds (an empty ``when`` always holds)."""

    when: tuple[Condition, ...]
    goto: str  # a step id or END


@dataclass(frozen=True)
class Step:
    id: str
    kind: StepKind
    text: Texts
    options: tuple[Option, ...] = ()  # choice steps; yes_no and scale get built-in ones
    scale_style: ScaleStyle = ScaleStyle.NUMERIC
    scale_min: int = 1
    scale_max: int = 5
    min_value: int | None = None  # number steps
    max_value: int | None = None
    max_length: int = 1000  # text steps: longer replies are cut and flagged
    optional: bool = False
    invalid: Texts | None = None  # re-prompt text; None uses the built-in one
    max_attempts: int = 3
    on_invalid: OnInvalid = OnInvalid.SKIP
    branches: tuple[Branch, ...] = ()  # checked in order; first match wins
    next: str | None = None  # default next step; None = the following step in the list
    metric: str | None = None  # "csat", "nps", "fft" ... for reports
    line: int = 0  # where the step starts in its YAML file, for error messages


@dataclass(frozen=True)
class Triggers:
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)  # lang -> words
    # Start codes for Telegram deep links and QR codes: code -> service point (or None).
    codes: dict[str, str | None] = field(default_factory=dict)
    # Codes that name a language (``language: sv``): starting with one is an explicit choice.
    code_languages: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QuietHours:
    start: str = "09:00"  # local time sends may begin
    end: str = "20:00"  # local time sends must stop
    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5)  # ISO weekday - 1: Monday=0 ... Sunday=6


@dataclass(frozen=True)
class FollowupRule:
    delay: timedelta = timedelta(hours=2)
    window: QuietHours = field(default_factory=QuietHours)
    reminder_after: timedelta | None = None
    reminder: Texts | None = None
    give_up_after: timedelta = timedelta(days=3)  # not sent at all after this
    frequency_cap: timedelta = timedelta(days=30)


@dataclass(frozen=True)
class Flow:
    id: str
    version: str  # content hash of the source; runs are pinned to it
    title: Texts
    default_language: str
    languages: tuple[str, ...]
    steps: tuple[Step, ...]
    closing: Texts
    triggers: Triggers = field(default_factory=Triggers)
    service_points: tuple[str, ...] = ()
    expires_after: timedelta = timedelta(hours=24)
    expired: Texts | None = None  # sent when a citizen writes to an expired run
    followup: FollowupRule | None = None
    source: str = ""  # file path the flow came from
    # Step id -> position, built once (the engine looks steps up on every reply).
    _positions: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        positions = {step.id: index for index, step in enumerate(self.steps)}
        object.__setattr__(self, "_positions", positions)

    def step(self, step_id: str) -> Step:
        return self.steps[self.index_of(step_id)]

    def has_step(self, step_id: str) -> bool:
        return step_id in self._positions

    def index_of(self, step_id: str) -> int:
        try:
            return self._positions[step_id]
        except KeyError:
            raise KeyError(f"flow {self.id!r} has no step {step_id!r}") from None

    def text(self, texts: Texts, language: str) -> str:
        """The text in ``language``, falling back to the flow's default language."""
        return texts.get(language) or texts[self.default_language]
