"""``palaute qr FLOW_ID --point SERVICE_POINT``: printable QR codes for posters and desks.

Writes two codes, each as PNG (to print) and SVG (to scale without blur):

* ``<flow>-<point>-telegram.png/.svg``: the deep link ``https://t.me/<bot>?start=CODE``,
  where CODE is the flow's start code bound to that service point in the flow's YAML::

      service_points: [kaarina-main-library]
      triggers:
        codes:
          - {code: kirjasto_kaarina_1, service_point: kaarina-main-library}

  Scanning it opens the bot; pressing Start begins that survey for that desk.
* ``<flow>-<point>-sms.png/.svg``: ``SMSTO:<number>:<KEYWORD>``, which opens the phone's
  SMS app with the survey keyword ready to send. An SMS keyword names the flow only, so
  answers that start this way are not tied to the service point (unless the flow has
  just one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import segno

from bot.catalogue import Catalogue
from bot.flow import Flow
from bot.flow_problems import FlowError
from channels.telegram.keyboards import deep_link
from palaute.config import Settings


@dataclass(frozen=True)
class QrCode:
    kind: str  # "telegram" or "sms"
    content: str
    png: Path
    svg: Path


def codes_for_point(catalogue: Catalogue, flow: Flow, service_point: str) -> list[str]:
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


def write_qr(content: str, out_dir: Path, stem: str, title: str, scale: int) -> tuple[Path, Path]:
    qr = segno.make_qr(content, error="q")
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    qr.save(str(png), scale=scale, border=4)
    qr.save(str(svg), scale=scale, border=4, title=title, desc=content)
    return png, svg


@click.command("qr")
@click.argument("flow_id")
@click.option("--point", "service_point", required=True, help="Service point id (from the flow).")
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
@click.option("--keyword", default=None, help="SMS keyword [the flow's first keyword].")
@click.option("--scale", default=10, show_default=True, help="Pixels per module in the PNG.")
def qr(
    flow_id: str,
    service_point: str,
    out_dir: Path,
    bot_username: str | None,
    sms_number: str | None,
    keyword: str | None,
    scale: int,
) -> None:
    """Write QR codes (PNG and SVG) that start FLOW_ID at a service point."""
    settings = Settings()
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
    if flow.service_points and service_point not in flow.service_points:
        raise click.ClickException(
            f"flow {flow_id!r} has no service point {service_point!r} "
            f"(its service_points: {', '.join(flow.service_points)})"
        )
    codes = codes_for_point(catalogue, flow, service_point)
    if not codes:
        raise click.ClickException(
            f"flow {flow_id!r} has no start code for service point {service_point!r}. "
            f"Add one to {flow.source or 'the flow file'}:\n"
            f"  triggers:\n    codes:\n"
            f"      - {{code: {flow_id.replace('-', '_')}_{service_point.replace('-', '_')}, "
            f"service_point: {service_point}}}"
        )
    username = bot_username or settings.telegram_bot_username
    if not username:
        raise click.ClickException(
            "no bot username: set TELEGRAM_BOT_USERNAME or pass --bot your_bot"
        )
    try:
        link = deep_link(username, codes[0])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{flow.id}-{service_point}"
    title = flow.text(flow.title, flow.default_language)
    png, svg = write_qr(link, out_dir, f"{stem}-telegram", title, scale)
    click.echo(f"Telegram: {link}")
    click.echo(f"  {png}\n  {svg}")
    if len(codes) > 1:
        click.echo(f"  (other codes for this point: {', '.join(codes[1:])})")

    number = sms_number or settings.twilio_from_number
    word = keyword or sms_keyword(flow)
    if not number or not word:
        missing = (
            "no SMS number (set TWILIO_FROM_NUMBER or --sms-number)"
            if not number
            else ("no SMS keyword (add triggers.keywords to the flow or pass --keyword)")
        )
        click.echo(f"SMS: not written, {missing}")
        return
    content = f"SMSTO:{number}:{word}"
    png, svg = write_qr(content, out_dir, f"{stem}-sms", title, scale)
    click.echo(f"SMS: {content}")
    click.echo(f"  {png}\n  {svg}")
