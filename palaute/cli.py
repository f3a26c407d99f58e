"""The `palaute` command line. Each command group lives in palaute/commands/."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """palaute: feedback surveys by SMS, Telegram and the browser simulator."""


# Command groups are registered below, one line each.
