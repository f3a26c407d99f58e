"""Compare language detectors on the labelled short replies in tests/data/language/.

    .venv/bin/python -m bench.language          # prints the tables (about a minute)
    .venv/bin/python -m bench.language --quick  # fewer timing rounds

Each setup runs in its own subprocess so its resident memory (RSS) is attributable:
the memory column is the worker's RSS after building the detectors and detecting
every reply, minus the RSS of the same worker before importing the library.

Setups:
  langdetect     langdetect 1.0.9, seeded (DetectorFactory.seed = 0), restricted to the
                 candidates with a prior map
  py3langid      py3langid with set_languages(candidates), normalised probabilities
  lingua-low     lingua 2.2, low-accuracy mode, built for the candidates
  lingua-high    lingua 2.2, high-accuracy mode, built for the candidates
  palaute        bot.language.LinguaDetector: lingua high accuracy after removing URLs,
                 digits, emoji and neutral words, abstaining below abstain_threshold(n, words)

Per setup, one row per reply length (words with letters: 1w, 2-3w, 4-10w, 11+w; "all"):
  top1 3 / top1 8   share right taking the best guess (no abstention; an error or no
                    guess counts as wrong), restricted to fi/sv/en or to the 8 languages
  ans 3 / ans 8     share answered: best guess confidence >= abstain_threshold(n, words),
                    the same rule for every setup (palaute applies it itself, so its
                    top1 columns count its abstentions as wrong)
  prec 3 / prec 8   share right among the answered
  neutral           share of language-neutral replies ("4", "ok", "👍", names, URLs)
                    answered among fi/sv/en
Summary: those for all lengths, plus
  right 4+w         share answered and right among fi/sv/en replies of 4 words or more
  µs                mean microseconds per detection after warm-up (fi/sv/en detector,
                    every labelled reply, best of 5 rounds)
  load s            seconds to import and build the fi/sv/en and 8-language detectors
  RSS MB            resident memory the setup added
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "language"
THREE = ("fi", "sv", "en")
EIGHT = ("fi", "sv", "en", "ru", "et", "uk", "so", "ar")
SETUPS = ("langdetect", "py3langid", "lingua-low", "lingua-high", "palaute")
BUCKETS = ("1w", "2-3w", "4-10w", "11+w")


def load_labelled() -> list[tuple[str, str]]:
    """(label, text) pairs; label is the file name: "fi", ..., "neutral"."""
    rows = []
    for path in sorted(DATA.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append((path.stem, line))
    return rows


def words(text: str) -> int:
    return sum(1 for token in text.split() if any(char.isalpha() for char in token))


def bucket(text: str) -> str:
    n = words(text)
    return "1w" if n <= 1 else "2-3w" if n <= 3 else "4-10w" if n <= 10 else "11+w"


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------- workers


def make_detect(setup: str) -> Any:
    """A function (text, languages) -> (code | None, confidence) for ``setup``."""
    if setup == "langdetect":
        import langdetect.detector_factory as factory_module
        from langdetect import DetectorFactory
        from langdetect.lang_detect_exception import LangDetectException

        DetectorFactory.seed = 0
        factory_module.init_factory()
        factory = factory_module._factory

        def detect_langdetect(text: str, languages: tuple[str, ...]) -> tuple[str | None, float]:
            detector = factory.create()
            detector.set_prior_map({code: 1.0 / len(languages) for code in languages})
            detector.append(text)
            try:
                found = detector.get_probabilities()
            except LangDetectException:
                return None, 0.0
            return (found[0].lang, found[0].prob) if found else (None, 0.0)

        return detect_langdetect

    if setup == "py3langid":
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        identifiers: dict[tuple[str, ...], Any] = {}

        def detect_langid(text: str, languages: tuple[str, ...]) -> tuple[str | None, float]:
            if languages not in identifiers:
                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(list(languages))
                identifiers[languages] = identifier
            code, prob = identifiers[languages].classify(text)
            return str(code), float(prob)

        return detect_langid

    if setup in ("lingua-low", "lingua-high"):
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        built: dict[tuple[str, ...], Any] = {}

        def detect_lingua(text: str, languages: tuple[str, ...]) -> tuple[str | None, float]:
            if languages not in built:
                builder = LanguageDetectorBuilder.from_iso_codes_639_1(
                    *[getattr(IsoCode639_1, code.upper()) for code in languages]
                )
                if setup == "lingua-low":
                    builder = builder.with_low_accuracy_mode()
                built[languages] = builder.build()
            values = built[languages].compute_language_confidence_values(text)
            if not values or values[0].value == 0:
                return None, 0.0
            return values[0].language.iso_code_639_1.name.lower(), float(values[0].value)

        return detect_lingua

    if setup == "palaute":
        from bot.language import LinguaDetector

        ours = LinguaDetector()

        def detect_palaute(text: str, languages: tuple[str, ...]) -> tuple[str | None, float]:
            found = ours.detect(text, languages)
            return found.language, found.confidence

        return detect_palaute

    raise SystemExit(f"unknown setup {setup!r}; choose from {', '.join(SETUPS)}")


def worker(setup: str, rounds: int) -> None:
    """Detect every reply with ``setup``; print JSON with results, timing and RSS."""
    rows = load_labelled()
    before = rss_kb()
    started = time.perf_counter()
    detect = make_detect(setup)
    detect("kiitos hyvä palvelu", THREE)  # builds the detectors
    detect("kiitos hyvä palvelu", EIGHT)
    load_s = time.perf_counter() - started
    three = [detect(text, THREE) for _, text in rows]
    eight = [detect(text, EIGHT) for _, text in rows]
    texts = [text for _, text in rows]
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for text in texts:
            detect(text, THREE)
        best = min(best, (time.perf_counter() - started) / len(texts))
    print(
        json.dumps(
            {
                "three": three,
                "eight": eight,
                "us": best * 1e6,
                "load_s": load_s,
                "rss_mb": (rss_kb() - before) / 1024,
            }
        )
    )


# --------------------------------------------------------------------------- report


def share(hits: int, total: int) -> str:
    return f"{100 * hits / total:5.1f}%" if total else "    -"


def metrics(rows: list[tuple[str, str]], result: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Figures per length bucket ("all", "1w" ...) for one setup."""
    from bot.language import abstain_threshold

    three, eight = result["three"], result["eight"]

    def answered(i: int, res: list[Any], candidates: int) -> bool:
        threshold = abstain_threshold(candidates, words(rows[i][1]))
        return res[i][0] is not None and res[i][1] >= threshold

    out: dict[str, dict[str, str]] = {}
    for name in ("all", *BUCKETS):
        part = [i for i, (_, text) in enumerate(rows) if name == "all" or bucket(text) == name]
        idx3 = [i for i in part if rows[i][0] in THREE]
        idx8 = [i for i in part if rows[i][0] in EIGHT]
        ans3 = [i for i in idx3 if answered(i, three, 3)]
        ans8 = [i for i in idx8 if answered(i, eight, 8)]
        neutral = [i for i in part if rows[i][0] == "neutral"]
        out[name] = {
            "top1 3": share(sum(three[i][0] == rows[i][0] for i in idx3), len(idx3)),
            "top1 8": share(sum(eight[i][0] == rows[i][0] for i in idx8), len(idx8)),
            "ans 3": share(len(ans3), len(idx3)),
            "prec 3": share(sum(three[i][0] == rows[i][0] for i in ans3), len(ans3)),
            "ans 8": share(len(ans8), len(idx8)),
            "prec 8": share(sum(eight[i][0] == rows[i][0] for i in ans8), len(ans8)),
            "neutral": share(sum(answered(i, three, 3) for i in neutral), len(neutral)),
        }
    long = [i for i, (label, text) in enumerate(rows) if label in THREE and words(text) >= 4]
    out["all"]["right 4+w"] = share(
        sum(answered(i, three, 3) and three[i][0] == rows[i][0] for i in long), len(long)
    )
    out["all"]["µs"] = f"{result['us']:7.0f}"
    out["all"]["load s"] = f"{result['load_s']:6.2f}"
    out["all"]["RSS MB"] = f"{result['rss_mb']:6.1f}"
    return out


def table(title: str, columns: list[str], results: dict[str, dict[str, str]]) -> str:
    width = max(len(name) for name in results) + 2
    lines = [title, "".ljust(width) + " ".join(c.rjust(9) for c in columns)]
    for name, row in results.items():
        lines.append(name.ljust(width) + " ".join(row.get(c, "").rjust(9) for c in columns))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="1 timing round instead of 5")
    parser.add_argument("--setups", default=",".join(SETUPS))
    args = parser.parse_args()
    rounds = 1 if args.quick else 5
    if args.worker:
        worker(args.worker, rounds)
        return
    rows = load_labelled()
    counts = {label: sum(1 for lab, _ in rows if lab == label) for label in (*EIGHT, "neutral")}
    print("labelled replies:", ", ".join(f"{k} {v}" for k, v in counts.items()))
    idx3 = [text for label, text in rows if label in THREE]
    print(
        "fi/sv/en by length:",
        ", ".join(f"{b} {sum(bucket(t) == b for t in idx3)}" for b in BUCKETS),
    )
    results: dict[str, dict[str, dict[str, str]]] = {}
    for setup in args.setups.split(","):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.language",
                "--worker",
                setup,
                *(["--quick"] if args.quick else []),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        if proc.returncode != 0:
            print(f"{setup}: worker failed\n{proc.stderr}", file=sys.stderr)
            continue
        results[setup] = metrics(rows, json.loads(proc.stdout))
    columns = ["top1 3", "top1 8", "ans 3", "prec 3", "ans 8", "prec 8", "neutral"]
    for setup, per_bucket in results.items():
        print()
        print(table(f"{setup}, by reply length:", columns, per_bucket))
    summary = {setup: per_bucket["all"] for setup, per_bucket in results.items()}
    print()
    print(
        table(
            "Summary (fi/sv/en unless 8; targets: prec 3 >= 99%, ans 3 >= 85%, right 4+w >= 98%,"
            " neutral <= 10%, top1 8 >= 94%, < 1000 µs):",
            ["prec 3", "ans 3", "right 4+w", "neutral", "top1 8", "µs", "load s", "RSS MB"],
            summary,
        )
    )
    if "langdetect" in summary and "palaute" in summary:
        base = float(summary["langdetect"]["µs"])
        ours = float(summary["palaute"]["µs"])
        print(f"\npalaute / langdetect time per detection: {ours / base:.3f}x")


if __name__ == "__main__":
    main()
