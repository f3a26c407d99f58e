"""``palaute lang detect``: check the language detector on your own replies.

Reads one reply per line on stdin and prints, per line, the detected language code
(``-`` when the detector abstains) and its confidence, tab-separated::

    printf 'kiitos hyvä palvelu\\n4\\npå svenska tack\\n' | palaute lang detect
    fi	0.9955
    -	0.0000
    sv	0.9919

It uses the same detector as the conversations (``bot.language``), restricted to
``--languages`` (default fi,sv,en).
"""

from __future__ import annotations

import io
import sys

import click

from bot.language import LinguaDetector, known_codes, normalize_code


@click.group()
def lang() -> None:
    """Language detection tools."""


def _parse_languages(value: str) -> list[str]:
    codes = [normalize_code(part) for part in value.split(",") if part.strip()]
    unknown = [code for code in codes if code not in known_codes(codes)]
    if unknown:
        raise click.BadParameter(
            f"unknown language code(s) {', '.join(unknown)}; use ISO 639-1 codes such as fi,sv,en"
        )
    if len(set(codes)) < 2:
        raise click.BadParameter("give at least two languages to choose from, e.g. fi,sv,en")
    return codes


@lang.command()
@click.option(
    "--languages",
    default="fi,sv,en",
    show_default=True,
    help="Comma-separated ISO 639-1 codes the detector chooses from.",
)
def detect(languages: str) -> None:
    """Detect the language of each line on stdin; print CODE<TAB>CONFIDENCE per line."""
    codes = _parse_languages(languages)
    detector = LinguaDetector()
    detector.warm(codes)
    stdin = sys.stdin
    if isinstance(stdin, io.TextIOWrapper):
        stdin.reconfigure(errors="replace")  # a stray byte must not stop the run
    for line in stdin:
        found = detector.detect(line.rstrip("\r\n"), codes)
        click.echo(f"{found.language or '-'}\t{found.confidence:.4f}")
