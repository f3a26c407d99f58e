"""Which language to talk to a citizen in: detection, explicit requests, priors.

Three entry points for the conversation engine; all are pure and deterministic
(the same inputs give the same result in every process):

``prior_language(flow_default, languages, phone_country_language=None, channel_hint=None,
visit_language=None, contact_language=None) -> str``
    The language to open a conversation in. Priors from weakest to strongest: the
    flow's default, the phone number's country (see ``language_for_phone``) or the
    channel's hint (Telegram ``language_code``), the visit's recorded language, the
    contact's stored (sticky) language. The strongest prior the flow supports wins.

``decide_language(current, text, flow_languages, *, synonym_languages=None,
detector=None) -> LanguageDecision``
    What to do after one citizen reply. In order:

    1. An explicit request ("suomeksi", "på svenska", "in English", "FI", "по-русски"
       ...) always wins: ``switched`` if it names another flow language, ``explicit``
       is True, ``unsupported`` is set when it names a language the flow lacks.
    2. Option synonyms are evidence: ``synonym_languages`` is the set of flow languages
       whose option synonyms matched the reply (the engine knows them). A match in the
       current language keeps it; a match in exactly one other language switches to it,
       unless the word is ambiguous across languages ("ja" is Swedish, German, Finnish
       "and"...) or language-neutral ("ok", digits).
    3. A confident detection of a language the flow does not declare, on a reply of
       two words or more (or in a script none of the flow languages uses), sets
       ``unsupported`` so the bot can list the available languages; the language is kept.
    4. Otherwise detection restricted to the flow's languages may switch, with
       hysteresis: staying needs nothing, leaving the current language needs a reply of
       at least two words detected with a confidence well above the abstention
       threshold. One-word and language-neutral replies ("4", "ok", "👍", a name, a URL)
       never switch.

``warm(languages)``
    Builds the detectors a flow with these languages will use (call it at app start,
    e.g. in the gunicorn worker, for every language set of the loaded flows). Nothing
    is built at import; the first ``detect`` builds lazily otherwise.

Detection itself sits behind ``LanguageDetector.detect(text, languages) -> Detection``.
The implementation is lingua (high-accuracy mode) built once per process per language
set (see ``bench/language.py`` for the measurements that chose it). It abstains
(``Detection.language is None``) when the text has no letters left after removing
digits, emoji, URLs, e-mail addresses and neutral words such as "ok", or when the
best language's confidence is below ``abstain_threshold(len(languages), words)``.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# --------------------------------------------------------------------------- detection

MAX_CHARS = 400  # longer replies are cut at a word boundary: enough evidence, bounded cost

# Languages whose use we can recognise and report ("we only speak fi, sv, en") even
# when the flow does not declare them: the largest language groups in Finland.
REPORTABLE_LANGUAGES: tuple[str, ...] = ("ru", "et", "uk", "so", "ar", "de", "fa", "es", "fr")

# Words that carry no language: they never make the detector answer.
NEUTRAL_WORDS = frozenset(
    {
        "ok", "okay", "okey", "oki", "okei", "okej", "okk", "kk", "k", "hmm", "hm", "mm",
        "mmm", "lol", "xd", "haha", "hah", "jep", "np", "x", "xx", "xxx",
    }
)  # fmt: skip

_URL = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|\S+@\S+"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:fi|se|ee|ru|ua|com|org|net|eu|io|info|gov|uk|de)\b\S*",
    re.IGNORECASE,
)
_NON_LETTER = re.compile(r"[^\w'’-]+|[\d_]+")


@dataclass(frozen=True)
class Detection:
    """The detected language, or ``None`` when the detector abstains.

    ``confidence`` is the best candidate's confidence in 0..1 (also when abstaining;
    0.0 when there was nothing to detect). ``scores``: every candidate's confidence when
    the detector reports them (lingua does; rounded to 6 decimals, as stable across
    processes as ``confidence``), so ``narrowed`` can answer for fewer candidates
    without detecting again.
    """

    language: str | None
    confidence: float
    scores: tuple[tuple[str, float], ...] = field(default=(), compare=False)


class LanguageDetector(Protocol):
    def detect(self, text: str, languages: Sequence[str]) -> Detection:
        """Detect ``text`` among ``languages`` (ISO 639-1 codes); never raises on any text."""
        ...


def abstain_threshold(candidates: int, words: int = 1) -> float:
    """Minimum confidence to answer among ``candidates`` languages for ``words`` words.

    Confidences are normalised over the candidates, so a uniform guess is 1/n and more
    candidates spread the confidence thinner: the threshold falls with n (2 → 0.825,
    3 → 0.70, 8 → 0.544). From four words on the best guess is reliable even when lingua
    spreads its confidence, so the margin shrinks (3 → 0.60, 8 → 0.506). Tuned on
    tests/data/language with bench/language.py.
    """
    spread = 0.75 if words < 4 else 0.45
    return 0.45 + spread / max(candidates, 1)


def switch_threshold(candidates: int, words: int = 1) -> float:
    """Minimum confidence to leave the current language (hysteresis margin above abstention)."""
    return min(0.95, abstain_threshold(candidates, words) + 0.1)


def clean_text(text: str) -> str:
    """The letters of a reply that can carry a language, lowercased, space-separated.

    Drops URLs, e-mail addresses, digits, emoji and punctuation, single letters and
    ``NEUTRAL_WORDS``; cuts to ``MAX_CHARS`` first. Returns "" when nothing is left.
    """
    text = text[:MAX_CHARS]
    text = _URL.sub(" ", text)
    words: list[str] = []
    for raw in _NON_LETTER.sub(" ", text).split():
        word = raw.strip("'’-").lower()
        if len(word) < 2 or word in NEUTRAL_WORDS:
            continue
        words.append(word)
    return " ".join(words)


def word_count(text: str) -> int:
    """How many language-carrying words a reply has (see ``clean_text``)."""
    return len(clean_text(text).split())


class LinguaDetector:
    """``LanguageDetector`` backed by lingua, one lingua detector per language set.

    Thread-safe; lingua detectors are built lazily on first use (or by ``warm``) and
    kept for the life of the process. Unknown codes are ignored; with fewer than two
    known candidates there is nothing to choose and the detector abstains.
    """

    def __init__(self, *, low_accuracy: bool = False) -> None:
        self._low_accuracy = low_accuracy
        self._built: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()

    def _lingua_for(self, codes: tuple[str, ...]) -> Any:
        found = self._built.get(codes)
        if found is not None:
            return found
        with self._lock:
            found = self._built.get(codes)
            if found is None:
                from lingua import IsoCode639_1, LanguageDetectorBuilder

                isos = [getattr(IsoCode639_1, code.upper()) for code in codes]
                builder = LanguageDetectorBuilder.from_iso_codes_639_1(*isos)
                if self._low_accuracy:
                    builder = builder.with_low_accuracy_mode()
                found = builder.with_preloaded_language_models().build()
                self._built[codes] = found
            return found

    def warm(self, languages: Iterable[str]) -> None:
        codes = known_codes(languages)
        if len(codes) >= 2:
            self._lingua_for(codes).compute_language_confidence_values("kiitos tack thanks")

    def detect(self, text: str, languages: Sequence[str]) -> Detection:
        codes = known_codes(languages)
        cleaned = clean_text(text)
        if len(codes) < 2 or not cleaned:
            return Detection(None, 0.0)
        values = self._lingua_for(codes).compute_language_confidence_values(cleaned)
        if not values:
            return Detection(None, 0.0)
        scores = tuple((_code_of(v.language), round(float(v.value), 6)) for v in values)
        return _judged(scores[0][0], scores[0][1], len(codes), cleaned, scores)


_CODES_OF_LINGUA: dict[Any, str] = {}
# ``narrowed`` renormalises scores rounded to 6 decimals; below this much confidence left
# on the smaller set the result could be off in the 4th decimal, so it detects again.
_NARROWABLE_MASS = 0.05


def _code_of(language: Any) -> str:
    """The ISO 639-1 code of a lingua ``Language`` (memoised: asked for every candidate)."""
    code = _CODES_OF_LINGUA.get(language)
    if code is None:
        code = _CODES_OF_LINGUA[language] = str(language.iso_code_639_1.name).lower()
    return code


def _judged(
    code: str, value: float, candidates: int, cleaned: str, scores: tuple[tuple[str, float], ...]
) -> Detection:
    confidence = round(value, 4)
    if confidence == 0.0:  # no evidence for any candidate
        return Detection(None, 0.0)
    if confidence < abstain_threshold(candidates, len(cleaned.split())):
        return Detection(None, confidence, scores)
    return Detection(code, confidence, scores)


def narrowed(detection: Detection, text: str, languages: Sequence[str]) -> Detection | None:
    """``detection`` (made among more candidates) as if ``text`` had been detected among
    ``languages`` alone; None when it cannot tell (then detect again).

    lingua's confidences are a softmax over the candidates' n-gram log-probabilities, so
    dropping candidates is renormalising the rest (identical to 1e-15 over
    tests/data/language). It cannot tell when (almost) all the confidence went to
    candidates outside ``languages``, e.g. when lingua's rules saw a letter only one
    language has (Estonian "õ"): lingua then works out the smaller set anew.
    """
    codes = known_codes(languages)
    if len(codes) < 2 or not detection.scores:
        return None
    kept = [(code, value) for code, value in detection.scores if code in codes]
    total = sum(value for _, value in kept)
    if total < _NARROWABLE_MASS:  # little left: the scores' rounding would show
        return None
    code, best = max(kept, key=lambda item: item[1])
    return _judged(code, best / total, len(codes), clean_text(text), tuple(
        (c, v / total) for c, v in kept
    ))  # fmt: skip


def known_codes(languages: Iterable[str]) -> tuple[str, ...]:
    """The ISO 639-1 codes of ``languages`` lingua knows, normalised, sorted, unique."""
    return _known_codes(tuple(languages))


@functools.lru_cache(maxsize=256)
def _known_codes(languages: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({c for c in map(normalize_code, languages) if c in _lingua_codes()}))


@functools.cache
def _lingua_codes() -> frozenset[str]:
    from lingua import Language

    return frozenset(str(lang.iso_code_639_1.name).lower() for lang in Language.all())


_default: LinguaDetector | None = None
_default_lock = threading.Lock()


def default_detector() -> LinguaDetector:
    """The process-wide detector shared by all flows (created on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = LinguaDetector()
    return _default


def warm(languages: Iterable[str]) -> None:
    """Build (once per process) the detectors a flow with ``languages`` uses."""
    langs = list(languages)
    detector = default_detector()
    detector.warm(langs)
    detector.warm([*langs, *REPORTABLE_LANGUAGES])


def detect(text: str, languages: Sequence[str]) -> Detection:
    """Detect with the process-wide detector."""
    return default_detector().detect(text, languages)


# --------------------------------------------------------------------------- codes, phones


@functools.lru_cache(maxsize=1024)
def normalize_code(code: str | None) -> str:
    """ "en-GB" → "en", "SV" → "sv", "zh_Hans" → "zh"; "" for nothing usable."""
    if not code:
        return ""
    primary = re.split(r"[-_]", code.strip(), maxsplit=1)[0].lower()
    return {"nb": "nb", "nn": "nn", "no": "nb", "iw": "he", "in": "id"}.get(primary, primary)


# Country calling code → the language most people there answer in (longest prefix wins).
_CALLING_CODES: dict[str, str] = {
    "358": "fi", "35818": "sv",  # Finland; Åland landlines
    "46": "sv", "47": "nb", "45": "da", "354": "is",
    "44": "en", "1": "en", "353": "en", "61": "en", "64": "en",
    "372": "et", "371": "lv", "370": "lt", "48": "pl",
    "7": "ru", "375": "ru", "380": "uk",
    "49": "de", "43": "de", "33": "fr", "34": "es", "39": "it", "31": "nl", "351": "pt",
    "90": "tr", "98": "fa", "252": "so",
    "20": "ar", "212": "ar", "213": "ar", "216": "ar", "218": "ar", "249": "ar",
    "961": "ar", "962": "ar", "963": "ar", "964": "ar", "965": "ar", "966": "ar",
    "967": "ar", "968": "ar", "971": "ar", "973": "ar", "974": "ar",
    "86": "zh", "84": "vi", "66": "th",
}  # fmt: skip


def language_for_phone(number: str) -> str | None:
    """The language of an E.164 number's country ("+358 40 123" → "fi"), None if unknown."""
    digits = re.sub(r"[\s().-]", "", number or "")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not digits.startswith("+") or not digits[1:].isdigit():
        return None
    digits = digits[1:]
    for length in range(5, 0, -1):
        found = _CALLING_CODES.get(digits[:length])
        if found is not None and len(digits) > length:
            return found
    return None


def prior_language(
    flow_default: str,
    languages: Sequence[str],
    phone_country_language: str | None = None,
    channel_hint: str | None = None,
    visit_language: str | None = None,
    contact_language: str | None = None,
) -> str:
    """The language to start in: the strongest prior the flow supports.

    Weakest first: ``flow_default``, ``phone_country_language`` (from
    ``language_for_phone``), ``channel_hint`` (Telegram ``language_code`` such as
    "sv-FI"), ``visit_language``, ``contact_language`` (stored, sticky).
    """
    supported = {normalize_code(code) for code in languages}
    chosen = normalize_code(flow_default)
    for prior in (phone_country_language, channel_hint, visit_language, contact_language):
        code = normalize_code(prior)
        if code and code in supported:
            chosen = code
    return chosen


# --------------------------------------------------------------------------- explicit requests

# Phrases that ask for a language, in that language and in fi/sv/en.
_REQUESTS: dict[str, tuple[str, ...]] = {
    "fi": ("suomeksi", "suomi", "suomea", "suomen kielellä", "suomenkielinen", "finnish",
           "in finnish", "finska", "på finska", "finsk", "suomi kiitos"),
    "sv": ("på svenska", "svenska", "ruotsiksi", "ruotsi", "ruotsia", "ruotsin kielellä",
           "swedish", "in swedish", "svensk", "på svensk", "pa svenska"),
    "en": ("in english", "english", "englanniksi", "englanti", "englantia", "på engelska",
           "engelska", "eng", "englanniksi kiitos"),
    "ru": ("по-русски", "по русски", "русский", "на русском", "на русском языке",
           "venäjäksi", "venäjä", "in russian", "russian", "på ryska", "ryska"),
    "et": ("eesti keeles", "eesti keel", "eesti", "eesti k", "viroksi", "viro",
           "in estonian", "estonian", "på estniska", "estniska"),
    "uk": ("українською", "українська", "українською мовою", "ukrainaksi", "ukraina",
           "in ukrainian", "ukrainian", "på ukrainska", "ukrainska"),
    "so": ("af soomaali", "soomaali", "somaliksi", "in somali", "somali", "på somaliska",
           "somaliska"),
    "ar": ("بالعربية", "العربية", "عربي", "باللغة العربية", "arabiaksi", "in arabic",
           "arabic", "på arabiska", "arabiska"),
    "de": ("auf deutsch", "deutsch", "saksaksi", "in german", "german", "på tyska", "tyska"),
    "fa": ("فارسی", "به فارسی", "persiaksi", "farsiksi", "in persian", "in farsi", "farsi"),
    "es": ("en español", "español", "espanol", "espanjaksi", "in spanish", "spanish",
           "på spanska"),
    "fr": ("en français", "français", "francais", "ranskaksi", "in french", "french",
           "på franska"),
}  # fmt: skip

# Words around a request that do not change it: "in English please", "puhu suomea".
_REQUEST_FILLER = frozenset(
    {
        "please", "pls", "plz", "kiitos", "kiitti", "tack", "speak", "puhu", "puhutko",
        "prata", "talar", "du", "kieli", "språk", "language", "lang", "kielellä",
        "can", "we", "you", "talk", "voitko", "voinko", "saanko", "kan", "vi", "ni",
        "ask", "again", "/language", "/lang", "/kieli", "/språk",
    }
)  # fmt: skip

# Bare codes ("SV", "fi"). Lowercase only where the code is not a common word
# ("en" is Finnish for "I don't", "et" "you don't", "so" is English, "de" Swedish).
_CODE_WORDS = frozenset({"en", "et", "so", "de", "es", "fr", "fa"})


def _request_key(text: str) -> str:
    text = unicodedata.normalize("NFC", text[:MAX_CHARS]).strip()
    text = re.sub(r"[!?.,:;\"()\[\]]+", " ", text).lower()
    words = [word for word in text.split() if word not in _REQUEST_FILLER]
    return " ".join(words).replace("–", "-")


_PHRASE_TO_LANGUAGE: dict[str, str] = {
    phrase: code for code, phrases in _REQUESTS.items() for phrase in phrases
}


def explicit_request(text: str) -> str | None:
    """The language a reply explicitly asks for ("på svenska" → "sv"), else None.

    Recognises the phrases above, with fillers ("please", "kiitos", "/language") and
    bare codes: "FI", "SV", "EN" (lowercase "fi", "sv", "ru", "uk", "ar" too).
    """
    stripped = text.strip()
    bare = stripped.strip("!.?")
    if bare.startswith("/"):  # /language sv, /lang en
        parts = bare.split()
        if len(parts) == 2 and parts[0].lower() in _REQUEST_FILLER:
            bare = parts[1]
    if 2 <= len(bare) <= 3 and bare.isalpha() and bare.isascii():
        low = bare.lower()
        if low in _REQUESTS and (bare.isupper() or low not in _CODE_WORDS):
            return low
    key = _request_key(text)
    return _PHRASE_TO_LANGUAGE.get(key) if key else None


# --------------------------------------------------------------------------- the decision

# Short words that are valid answers in several languages: a synonym match on one of
# them is no evidence ("ja": sv/de/nl/da/no yes, Finnish and Estonian "and").
AMBIGUOUS_WORDS = frozenset(
    {"ja", "jo", "jaa", "no", "nej", "ne", "nee", "ei", "si", "da", "ok", "okay", "super", "top"}
)


@dataclass(frozen=True)
class LanguageDecision:
    """What the conversation should do about the language after one reply.

    ``language``: the language to answer in from now on (``current`` or a flow language).
    ``switched``: it differs from the current one (re-ask in it).
    ``explicit``: the reply was a language request, not an answer to the question.
    ``unsupported``: a language the citizen used or asked for that the flow lacks
    (tell them which languages are available); None otherwise.
    ``reason``: "explicit", "synonym", "detected", "unsupported" or "kept" (for logs).
    ``confidence``: the detector's confidence behind the decision (1.0 for explicit).
    """

    language: str
    switched: bool
    explicit: bool = False
    unsupported: str | None = None
    reason: str = "kept"
    confidence: float = 0.0


_LATIN_LANGS = frozenset(
    {"fi", "sv", "en", "et", "so", "de", "fr", "es", "da", "nb", "nn", "is", "lv", "lt", "pl",
     "it", "nl", "pt", "tr", "vi"}
)  # fmt: skip


def _non_latin_script(text: str) -> bool:
    """True when most letters of ``text`` are not Latin (Cyrillic, Arabic ...)."""
    latin = other = 0
    for char in text[:MAX_CHARS]:
        if char.isalpha():
            if "LATIN" in unicodedata.name(char, ""):
                latin += 1
            else:
                other += 1
    return other > latin


class RememberingDetector:
    """A ``LanguageDetector`` that answers a question it was asked before from memory.

    For one message: ``prepare`` runs the detections ``decide_language`` will ask for,
    before the caller takes its database lock, and the core's questions inside the lock
    are then answered at once. Not shared between messages (it keeps every answer).
    """

    def __init__(self, detector: LanguageDetector | None = None) -> None:
        self._detector = detector
        self._memo: dict[tuple[str, tuple[str, ...]], Detection] = {}

    def detect(self, text: str, languages: Sequence[str]) -> Detection:
        key = (text, known_codes(languages))
        found = self._memo.get(key)
        if found is None:
            found = (self._detector or default_detector()).detect(text, languages)
            self._memo[key] = found
        return found

    def prepare(self, text: str, flow_languages: Sequence[str]) -> None:
        """Detect ``text`` now as ``decide_language`` would in a flow with these languages."""
        supported = tuple(dict.fromkeys(normalize_code(code) for code in flow_languages))
        if explicit_request(text) is not None or not clean_text(text):
            return
        words = word_count(text)
        outside = [code for code in REPORTABLE_LANGUAGES if code not in supported]
        if outside and (words >= 2 or _non_latin_script(text)):
            self.detect(text, [*supported, *outside])  # the flow's own set is narrowed from it
        elif len(supported) >= 2 and words >= 2:
            self.detect(text, supported)


def decide_language(
    current: str,
    text: str,
    flow_languages: Sequence[str],
    *,
    synonym_languages: set[str] | None = None,
    detector: LanguageDetector | None = None,
) -> LanguageDecision:
    """Decide the language after the reply ``text`` while talking in ``current``.

    ``flow_languages``: the languages the flow declares. ``synonym_languages``: the flow
    languages whose option synonyms matched ``text`` exactly (None or empty: no match).
    ``detector``: defaults to the process-wide lingua detector. See the module docstring.
    """
    current = normalize_code(current)
    supported = tuple(dict.fromkeys(normalize_code(code) for code in flow_languages))
    keep = LanguageDecision(language=current, switched=False)

    asked = explicit_request(text)
    if asked is not None:
        if asked in supported:
            return LanguageDecision(
                asked, switched=asked != current, explicit=True, reason="explicit", confidence=1.0
            )
        return LanguageDecision(
            current, switched=False, explicit=True, unsupported=asked, reason="unsupported"
        )

    matched = {normalize_code(code) for code in (synonym_languages or set())} & set(supported)
    if matched:
        word = " ".join(text.lower().split())
        if current in matched or len(matched) > 1 or word in AMBIGUOUS_WORDS:
            return keep
        if not clean_text(text):  # "1", "👍": the flow author listed a neutral synonym
            return keep
        (only,) = matched
        return LanguageDecision(only, switched=True, reason="synonym", confidence=1.0)

    if not clean_text(text):
        return keep
    detector = detector or default_detector()
    words = word_count(text)

    outside = [code for code in REPORTABLE_LANGUAGES if code not in supported]
    wide: Detection | None = None
    if outside and (words >= 2 or _non_latin_script(text)):
        wide = detector.detect(text, [*supported, *outside])
        if wide.language is not None and wide.language not in supported:
            flow_scripts_latin = all(code in _LATIN_LANGS for code in supported)
            if words >= 2 or (flow_scripts_latin and wide.language not in _LATIN_LANGS):
                return LanguageDecision(
                    current,
                    switched=False,
                    unsupported=wide.language,
                    reason="unsupported",
                    confidence=wide.confidence,
                )

    if len(supported) < 2 or words < 2:
        return keep
    found = (narrowed(wide, text, supported) if wide is not None else None) or detector.detect(
        text, supported
    )
    if (
        found.language is not None
        and found.language != current
        and found.confidence >= switch_threshold(len(supported), words)
    ):
        return LanguageDecision(
            found.language, switched=True, reason="detected", confidence=found.confidence
        )
    return LanguageDecision(current, switched=False, confidence=found.confidence)
