"""``palaute qr FLOW_ID [--point SERVICE_POINT]``: QR codes and posters for desks.

For each service point of the flow (or the ones named with ``--point``; a flow without
service points gets one set) and each channel that is configured, it writes:

* ``<flow>-<point>-<channel>.png/.svg``: the bare QR code (PNG to print, SVG to scale);
* ``<flow>-<point>-<channel>-poster.png/.svg/.pdf``: an A4 poster with a caption: the
  flow's title and "scan to give feedback" in each of the flow's languages, the code,
  and how to answer without scanning.

Channels (each optional; at least one is needed):

* Telegram (``TELEGRAM_BOT_USERNAME`` or ``--bot``): the deep link
  ``https://t.me/<bot>?start=CODE``;
* SMS (``TWILIO_FROM_NUMBER`` or ``--sms-number``): ``SMSTO:<number>:CODE``, which opens
  the phone's SMS app with the code ready to send. palaute starts the flow at that service
  point when the code arrives as a message, so SMS answers can be told apart by point.

CODE is the flow's start code bound to the service point in the flow's YAML::

    service_points: [kaarina-main-library]
    triggers:
      codes:
        - {code: kirjasto_kaarina, service_point: kaarina-main-library}

A flow without service points uses its codes without a point (Telegram) or its first
keyword (SMS). The PNG and PDF posters are drawn with DejaVu Sans when it is installed
(else Pillow's own font, or ``--font``); the SVG poster leaves fonts to the viewer, so it
shows every script.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import segno

from bot.catalogue import Catalogue
from bot.flow import Flow
from bot.flow_problems import FlowError
from channels.telegram.keyboards import deep_link
from palaute.config import Settings

# "Scan to give feedback" in the languages flows are written in (English otherwise).
SCAN_TEXTS = {
    "fi": "Skannaa ja anna palautetta",
    "sv": "Skanna och ge respons",
    "en": "Scan to give feedback",
    "se": "Skánne ja atte máhcahaga",
    "et": "Skanni ja anna tagasisidet",
    "ru": "Отсканируйте и оставьте отзыв",
    "uk": "Відскануйте та залиште відгук",
    "ar": "امسح الرمز لتقديم ملاحظاتك",
    "so": "Iskaan samee oo faallo bixi",
    "de": "Scannen und Feedback geben",
    "fr": "Scannez pour donner votre avis",
    "es": "Escanee para dar su opinión",
    "fa": "برای ارائه بازخورد اسکن کنید",
    "tr": "Geri bildirim için tarayın",
    "pl": "Zeskanuj i podziel się opinią",
}
# How to answer without scanning, per channel, by the poster's first language.
BY_HAND = {
    "sms": {"fi": "tai tekstiviesti", "sv": "eller sms", "en": "or text"},
    "telegram": {"fi": "tai Telegram", "sv": "eller Telegram", "en": "or Telegram"},
}
FONT_CANDIDATES = (  # regular, bold
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
     "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf"),
)  # fmt: skip
DPI = 200
PAGE = (1654, 2339)  # A4 at 200 dpi, in pixels (the SVG uses the same units)
MARGIN = 110


@dataclass(frozen=True)
class Code:
    """One QR code to print: what it holds and what the poster says around it."""

    channel: str  # "telegram" or "sms"
    content: str
    stem: str
    by_hand: str  # e.g. "kirjasto_kaarina → +358451234567"


@dataclass(frozen=True)
class Caption:
    titles: list[str]  # the flow's title, default language first
    scan: list[tuple[str, str]]  # (language, "scan to give feedback")
    by_hand: str


def codes_for_point(catalogue: Catalogue, flow: Flow, service_point: str | None) -> list[str]:
    """The flow's start codes that open it for ``service_point``, in YAML order."""
    found = []
    for code in flow.triggers.codes:
        routed = catalogue.by_code(code)
        if routed is not None and routed[0].id == flow.id and routed[1] == service_point:
            found.append(code)
    return found


def sms_keyword(flow: Flow) -> str | None:
    """The flow's first start keyword in its default language (else in any language)."""
    keywords = flow.triggers.keywords
    words = keywords.get(flow.default_language) or next(iter(keywords.values()), ())
    return words[0].upper() if words else None


def caption_for(flow: Flow, code: Code) -> Caption:
    languages = [flow.default_language, *(x for x in flow.languages if x != flow.default_language)]
    titles = list(dict.fromkeys(flow.text(flow.title, language) for language in languages))
    scan = list({SCAN_TEXTS.get(x, SCAN_TEXTS["en"]): x for x in languages}.items())
    words = BY_HAND[code.channel]
    lead = words.get(flow.default_language, words["en"])
    return Caption(titles, [(x, text) for text, x in scan], f"{lead}: {code.by_hand}")


def write_qr(content: str, out_dir: Path, stem: str, title: str, scale: int) -> tuple[Path, Path]:
    qr = segno.make_qr(content, error="q")
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    qr.save(str(png), scale=scale, border=4)
    qr.save(str(svg), scale=scale, border=4, title=title, desc=content)
    return png, svg


def _fonts(font: Path | None) -> tuple[Any, Any]:
    """A (regular, bold) pair of callables size -> Pillow font."""
    from PIL import ImageFont

    if font is not None:
        return (lambda size: ImageFont.truetype(str(font), size),) * 2
    for regular, bold in FONT_CANDIDATES:
        if Path(regular).exists():
            heavy = bold if Path(bold).exists() else regular
            return (
                lambda size, path=regular: ImageFont.truetype(path, size),
                lambda size, path=heavy: ImageFont.truetype(path, size),
            )
    return (lambda size: ImageFont.load_default(size),) * 2


def _lines(caption: Caption) -> list[tuple[str, int, bool, str | None]]:
    """The poster's text lines above the code: (text, size, bold, language)."""
    lines: list[tuple[str, int, bool, str | None]] = [(caption.titles[0], 96, True, None)]
    lines += [(title, 64, True, None) for title in caption.titles[1:]]
    lines += [(text, 56, False, language) for language, text in caption.scan]
    return lines


def write_poster_png_pdf(
    content: str, caption: Caption, png: Path, pdf: Path, font: Path | None
) -> None:
    from PIL import Image, ImageDraw

    regular, bold = _fonts(font)
    page = Image.new("L", PAGE, 255)
    draw = ImageDraw.Draw(page)
    width = PAGE[0] - 2 * MARGIN

    def centred(text: str, y: int, size: int, heavy: bool) -> int:
        make = bold if heavy else regular
        chosen = make(size)
        while size > 20 and draw.textlength(text, font=chosen) > width:
            size -= 4
            chosen = make(size)
        draw.text((PAGE[0] // 2, y), text, font=chosen, fill=0, anchor="mt")
        return y + int(size * 1.3)

    y = MARGIN
    for text, size, heavy, _ in _lines(caption):
        y = centred(text, y, size, heavy)
    qr = segno.make_qr(content, error="q")
    modules = qr.symbol_size(scale=1, border=4)[0]
    side = min(width, PAGE[1] - y - MARGIN - 200)
    scale = max(1, side // modules)
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=scale, border=4)
    with Image.open(buffer) as opened:
        code_image = opened.convert("L")
    left = (PAGE[0] - code_image.width) // 2
    top = y + 40
    page.paste(code_image, (left, top))
    centred(caption.by_hand, top + code_image.height + 40, 48, False)
    page.save(png, dpi=(DPI, DPI))
    page.save(pdf, "PDF", resolution=DPI, title=caption.titles[0])


def write_poster_svg(content: str, caption: Caption, svg: Path) -> None:
    from xml.sax.saxutils import escape

    width = PAGE[0] - 2 * MARGIN
    parts = []
    y = MARGIN
    for text, size, heavy, language in _lines(caption):
        lang = f' xml:lang="{language}"' if language else ""
        weight = ' font-weight="bold"' if heavy else ""
        parts.append(
            f'<text x="{PAGE[0] // 2}" y="{y + size}" font-size="{size}"{weight}{lang} '
            f'textLength="{width}" lengthAdjust="spacingAndGlyphs">{escape(text)}</text>'
            if len(text) * size * 0.55 > width
            else f'<text x="{PAGE[0] // 2}" y="{y + size}" font-size="{size}"{weight}{lang}>'
            f"{escape(text)}</text>"
        )
        y += int(size * 1.3)
    qr = segno.make_qr(content, error="q")
    side = min(width, PAGE[1] - y - MARGIN - 200)
    code = qr.svg_inline(scale=1, border=4, omitsize=True)
    code = code.replace(
        "<svg ", f'<svg x="{(PAGE[0] - side) // 2}" y="{y + 40}" width="{side}" height="{side}" ', 1
    )
    parts.append(code)
    parts.append(
        f'<text x="{PAGE[0] // 2}" y="{y + 40 + side + 40 + 48}" font-size="48">'
        f"{escape(caption.by_hand)}</text>"
    )
    body = "\n".join(parts)
    svg.write_text(
        f'<?xml version="1.0" encoding="utf-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm" '
        f'viewBox="0 0 {PAGE[0]} {PAGE[1]}">\n'
        f"<title>{escape(caption.titles[0])}</title>\n<desc>{escape(content)}</desc>\n"
        f'<rect width="100%" height="100%" fill="#fff"/>\n'
        f'<g font-family="DejaVu Sans, Arial, Noto Sans, sans-serif" text-anchor="middle" '
        f'fill="#000">\n{body}\n</g>\n</svg>\n',
        encoding="utf-8",
    )


def _load(settings: Settings, flow_id: str) -> tuple[Catalogue, Flow]:
    try:
        catalogue = Catalogue.load(settings.flows_dir)
    except FlowError as exc:
        raise click.ClickException(
            f"the flows in {settings.flows_dir} have errors; fix them first "
            f"(`palaute flows validate`):\n{exc}"
        ) from exc
    flow = catalogue.get(flow_id)
    if flow is None:
        known = ", ".join(sorted(f.id for f in catalogue.all())) or "none"
        raise click.ClickException(
            f"no flow {flow_id!r} in {settings.flows_dir} (flows there: {known})"
        )
    return catalogue, flow


def _point_code(catalogue: Catalogue, flow: Flow, point: str | None) -> str:
    codes = codes_for_point(catalogue, flow, point)
    if codes:
        return codes[0]
    if point is None:
        example = flow.id.replace("-", "_")
        raise click.ClickException(
            f"flow {flow.id!r} has no start code for Telegram. Add one to "
            f"{flow.source or 'the flow file'}:\n  triggers:\n    codes: [{example}]"
        )
    raise click.ClickException(
        f"flow {flow.id!r} has no start code for service point {point!r}. "
        f"Add one to {flow.source or 'the flow file'}:\n"
        f"  triggers:\n    codes:\n"
        f"      - {{code: {flow.id.replace('-', '_')}_{point.replace('-', '_')}, "
        f"service_point: {point}}}"
    )


def plan(
    catalogue: Catalogue,
    flow: Flow,
    points: list[str | None],
    username: str,
    number: str,
    keyword: str | None,
) -> list[Code]:
    """Every code to write, checked before anything is written."""
    planned = []
    for point in points:
        stem = f"{flow.id}-{point}" if point else flow.id
        if username:
            try:
                link = deep_link(username, _point_code(catalogue, flow, point))
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
            planned.append(Code("telegram", link, f"{stem}-telegram", f"t.me/{username}"))
        if number:
            word = keyword or (_point_code(catalogue, flow, point) if point else sms_keyword(flow))
            if not word:
                raise click.ClickException(
                    f"flow {flow.id!r} has no SMS keyword: add triggers.keywords to "
                    f"{flow.source or 'the flow file'} or pass --keyword"
                )
            planned.append(
                Code("sms", f"SMSTO:{number}:{word}", f"{stem}-sms", f"{word} → {number}")
            )
    return planned


@click.command("qr")
@click.argument("flow_id")
@click.option(
    "--point",
    "service_points",
    multiple=True,
    help="Service point id (repeatable) [every service point of the flow].",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write the images to (created if missing).",
)
@click.option("--bot", "bot_username", default=None, help="Bot username [TELEGRAM_BOT_USERNAME].")
@click.option("--sms-number", default=None, help="SMS number in E.164 [TWILIO_FROM_NUMBER].")
@click.option(
    "--keyword",
    default=None,
    help="SMS text instead of the point's code (answers then cannot be told apart by point).",
)
@click.option("--scale", default=10, show_default=True, help="Pixels per module in the PNG.")
@click.option(
    "--font",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="TrueType font for the PNG/PDF posters [DejaVu Sans if installed].",
)
def qr(
    flow_id: str,
    service_points: tuple[str, ...],
    out_dir: Path,
    bot_username: str | None,
    sms_number: str | None,
    keyword: str | None,
    scale: int,
    font: Path | None,
) -> None:
    """Write QR codes and A4 posters (PNG, SVG, PDF) that start FLOW_ID at its service
    points: a Telegram deep link and/or an SMS with the point's start code, for whichever
    of TELEGRAM_BOT_USERNAME (--bot) and TWILIO_FROM_NUMBER (--sms-number) is set."""
    settings = Settings()
    catalogue, flow = _load(settings, flow_id)
    unknown = [p for p in service_points if flow.service_points and p not in flow.service_points]
    if unknown:
        raise click.ClickException(
            f"flow {flow_id!r} has no service point {unknown[0]!r} "
            f"(its service_points: {', '.join(flow.service_points)})"
        )
    points: list[str | None] = list(service_points or flow.service_points) or [None]
    username = bot_username or settings.telegram_bot_username
    number = sms_number or settings.twilio_from_number
    if not username and not number:
        raise click.ClickException(
            "nothing to print: set TELEGRAM_BOT_USERNAME (or --bot) for a Telegram code "
            "and/or TWILIO_FROM_NUMBER (or --sms-number) for an SMS code"
        )
    planned = plan(catalogue, flow, points, username, number, keyword)

    out_dir.mkdir(parents=True, exist_ok=True)
    title = flow.text(flow.title, flow.default_language)
    for code in planned:
        png, svg = write_qr(code.content, out_dir, code.stem, title, scale)
        poster = out_dir / f"{code.stem}-poster"
        caption = caption_for(flow, code)
        write_poster_png_pdf(
            code.content, caption, poster.with_suffix(".png"), poster.with_suffix(".pdf"), font
        )
        write_poster_svg(code.content, caption, poster.with_suffix(".svg"))
        click.echo(f"{'Telegram' if code.channel == 'telegram' else 'SMS'}: {code.content}")
        for path in (png, svg, *(poster.with_suffix(s) for s in (".png", ".svg", ".pdf"))):
            click.echo(f"  {path}")
    for channel, setting in (("Telegram", username), ("SMS", number)):
        if not setting:
            hint = (
                "TELEGRAM_BOT_USERNAME or --bot"
                if channel == "Telegram"
                else ("TWILIO_FROM_NUMBER or --sms-number")
            )
            click.echo(f"{channel}: not written (set {hint})")
