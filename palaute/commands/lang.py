"""``palaute lang detect``: check the language detector on your own replies.

Reads one reply per line on stdin and prints, per line, three tab-separated columns
(TSV): the detected language code (``-`` when the detector abstains), its confidence and
the line it judged (tabs in it shown as spaces)::

    printf 'kiitos hyvä palvelu\\n4\\npå svenska tack\\n' | palaute lang detect
    fi	0.9955	kiitos hyvä palvelu
    -	0.0000	4
    sv	0.9919	på svenska tack

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
@click.option("--header", is_flag=True, help="Print a first line naming the columns.")
def detect(languages: str, header: bool) -> None:
    """Detect the language of each line on stdin.

    Prints one tab-separated line (TSV) per input line, in input order:

    \b
      CODE        the detected ISO 639-1 code, or - when the detector
                  abstains (too little text, no language in it, or no
                  language confident enough)
      CONFIDENCE  the confidence in the best-scoring language,
                  0.0000-1.0000 (below the threshold when CODE is -)
      TEXT        the input line itself (tabs shown as spaces)

    \b
    Example:
      printf 'kiitos hyvä palvelu\\n4\\n' | palaute lang detect
      fi      0.9955  kiitos hyvä palvelu
      -       0.0000  4
    """
    codes = _parse_languages(languages)
    detector = LinguaDetector()
    detector.warm(codes)
    stdin = sys.stdin
    if isinstance(stdin, io.TextIOWrapper):
        stdin.reconfigure(errors="replace")  # a stray byte must not stop the run
    if header:
        click.echo("code\tconfidence\ttext")
    for line in stdin:
        text = line.rstrip("\r\n")
        found = detector.detect(text, codes)
        shown = text.replace("\t", " ")
        click.echo(f"{found.language or '-'}\t{found.confidence:.4f}\t{shown}")
