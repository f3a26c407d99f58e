"""``palaute outbox run``: send queued SMS through Twilio (the outbox worker)."""

from __future__ import annotations

import time

import click

from palaute.config import Settings
from palaute.services import build_services


@click.group()
def outbox() -> None:
    """The outbox of outbound messages."""


@outbox.command("run")
@click.option("--once", is_flag=True, help="Send everything due now, then stop.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds between looks at the outbox (default: CLOCK_INTERVAL_SECONDS).",
)
def run(once: bool, interval: float | None) -> None:
    """Send due SMS, respecting SMS_RATE_PER_SECOND across all running workers."""
    settings = Settings()
    services = build_services(settings)
    try:
        worker = services.sms_outbox()
        if worker is None:
            raise click.ClickException(
                "Twilio is not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
                "TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID)."
            )
        pause = interval or settings.clock_interval_seconds
        while True:
            report = worker.run_until_idle(settings.clock_batch_size)
            if report.claimed or once:
                click.echo(f"outbox: {report}")
            for error in report.errors:
                click.echo(f"  {error}", err=True)
            if once:
                return
            time.sleep(pause)
    finally:
        services.close()
