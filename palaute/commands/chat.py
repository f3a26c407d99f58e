"""``palaute chat FLOW_ID``: talk to a flow in the terminal.

The conversation goes through the same ``ConversationService`` and database as SMS,
Telegram and the browser simulator (channel ``simulator``, a fresh random address per
run unless ``--address`` is given), so the answers are stored like real ones.

On a terminal it is interactive. When stdin is not a terminal it reads one citizen
message per line and prints each bot message on one line (line breaks inside a message
become " / "), so a conversation can be scripted::

    printf '4\\nkyllä\\nHyvä palvelu\\n' | palaute chat library-visit --lang fi
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

import click

from bot.messages import Inbound, Outgoing
from channels.simulator import CHANNEL
from service.timesource import utcnow

if TYPE_CHECKING:
    from palaute.services import Services


def _one_line(text: str) -> str:
    return " / ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def _print_messages(messages: Iterable[Outgoing], *, interactive: bool, out: TextIO) -> None:
    for message in messages:
        labels = [choice.label for choice in message.choices]
        if interactive:
            click.secho(message.text, fg="cyan", file=out)
            if labels:
                click.secho("  [" + " | ".join(labels) + "]", dim=True, file=out)
        else:
            line = _one_line(message.text)
            if labels:
                line += " [" + " | ".join(labels) + "]"
            click.echo(line, file=out)


def _run_status(services: Services, address: str) -> str | None:
    run = services.conversations.transcript(CHANNEL, address, limit=1).run
    return run.status.value if run is not None else None


@click.command()
@click.argument("flow_id")
@click.option(
    "--lang",
    "language",
    default=None,
    help="Language to start in (default: the language the --address contact used last, "
    "else the flow's own).",
)
@click.option(
    "--address",
    default=None,
    help="The simulated contact's address (default: a new random one, so each chat is new).",
)
def chat(flow_id: str, language: str | None, address: str | None) -> None:
    """Chat with flow FLOW_ID in the terminal, through the real engine and database.

    Interactive on a terminal (Ctrl-D ends). With stdin from a pipe or file, reads one
    citizen message per line and prints each bot message on its own line.
    """
    # Imported here: `palaute --help` need not load the database layer.
    from palaute.config import Settings
    from palaute.services import build_services
    from service.errors import StorageError

    try:
        services = build_services(Settings())
    except Exception as error:  # bad flows or DATABASE_URL: say what, not a traceback
        raise click.ClickException(str(error)) from error
    try:
        _chat(services, flow_id, language, address)
    except StorageError as error:
        hint = " (try again)" if error.retryable else ""
        raise click.ClickException(f"{error}{hint}") from error
    finally:
        services.close()


def _chat(services: Services, flow_id: str, language: str | None, address: str | None) -> None:
    flow = services.catalogue.get(flow_id)
    if flow is None:
        known = ", ".join(sorted(f.id for f in services.catalogue.all())) or "none"
        raise click.UsageError(f"unknown flow {flow_id!r}; flows in the catalogue: {known}")
    if language is not None and language not in flow.languages:
        raise click.UsageError(
            f"flow {flow_id!r} has no language {language!r}; use one of: "
            + ", ".join(flow.languages)
        )
    interactive = sys.stdin.isatty()
    out = sys.stdout
    address = address or f"terminal-{secrets.token_hex(6)}"
    result = services.conversations.start(
        CHANNEL, address, flow.id, now=utcnow(), language=language, inline_limit=None
    )
    if interactive:
        # The language the run started in: --lang, else the contact's remembered one.
        spoken = result.replies[0].language if result.replies else flow.default_language
        click.secho(f"{flow.text(flow.title, spoken)} ({spoken}) - Ctrl-D ends", bold=True)
    _print_messages(result.replies, interactive=interactive, out=out)
    counter = 0
    shown_status = _run_status(services, address) if interactive else None
    while True:
        if interactive:
            try:
                text = input("> ")
            except EOFError:
                click.echo()
                break
        else:
            line = sys.stdin.readline()
            if not line:
                break
            text = line.rstrip("\r\n")
        if not text.strip():
            continue  # an SMS or a chat message is never empty
        counter += 1
        inbound = Inbound(
            channel=CHANNEL,
            address=address,
            text=text,
            provider_id=f"{address}:{counter}-{secrets.token_hex(4)}",
        )
        result = services.conversations.handle(inbound, utcnow(), inline_limit=None)
        _print_messages(result.replies, interactive=interactive, out=out)
        if interactive:
            status = _run_status(services, address)
            if status != shown_status and status not in (None, "active"):
                _print_summary(services, address)
            shown_status = status
    if interactive and shown_status == "active":
        _print_summary(services, address)


def _print_summary(services: Services, address: str) -> None:
    """What was stored for the latest run (interactive mode only)."""
    transcript = services.conversations.transcript(CHANNEL, address, limit=1)
    run = transcript.run
    if run is None:
        return
    click.secho(f"-- run {run.status.value}; stored answers:", bold=True)
    for answer in transcript.answers:
        value = "(skipped)" if answer.skipped else repr(answer.value)
        click.echo(f"   {answer.step_id} = {value}   <- {answer.raw_text!r}")
