"""The `palaute` command line. Each command group lives in palaute/commands/."""

from __future__ import annotations

import click

from palaute.commands.chat import chat
from palaute.commands.clock import clock
from palaute.commands.db import db
from palaute.commands.flows import flows
from palaute.commands.lang import lang
from palaute.commands.outbox import outbox
from palaute.commands.qr import qr
from palaute.commands.results import results
from palaute.commands.serve import serve
from palaute.commands.telegram import telegram
from palaute.commands.users import users
from palaute.commands.visits import api_token, visits


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """palaute: feedback surveys by SMS, Telegram and the browser simulator."""


# Command groups are registered below, one line each.
main.add_command(lang)
main.add_command(qr)
main.add_command(telegram)
main.add_command(db)
main.add_command(flows)
main.add_command(serve)
main.add_command(chat)
main.add_command(visits)
main.add_command(api_token)
main.add_command(clock)
main.add_command(outbox)
main.add_command(users)
main.add_command(results)
