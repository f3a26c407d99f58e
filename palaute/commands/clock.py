"""``palaute clock``: send due follow-ups, run the outbox and close expired runs.

Run one or more (they share the work through the database): ``palaute clock``.
``--once`` handles everything due now and exits (cron, tests). With
``PALAUTE_ENV=production`` it refuses default or short secrets, as the web app does.
"""

from __future__ import annotations

import logging

import click

from palaute.config import Settings, UnsafeConfiguration, require_production_ready


@click.command()
@click.option("--once", is_flag=True, help="Handle what is due now, then exit.")
@click.option("--worker-id", default=None, help="Name in claims (default host:pid:random).")
def clock(once: bool, worker_id: str | None) -> None:
    """Run the scheduler: follow-ups, outbox, run expiry (stop with Ctrl-C / SIGTERM)."""
    from palaute.clock import build_jobs, run_clock
    from palaute.services import build_services

    settings = Settings()
    try:
        require_production_ready(settings)  # PALAUTE_ENV=production: no default secrets
    except UnsafeConfiguration as error:
        raise click.ClickException(str(error)) from None
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    services = build_services(settings)
    try:
        if once:
            jobs = build_jobs(services, worker_id=worker_id)
            report = jobs.dispatcher.run_until_idle(settings.clock_batch_size)
            jobs.outbox()
            jobs.expire_runs()
            click.echo(f"follow-ups: {report}")
            return
        run_clock(services, worker_id=worker_id)
    finally:
        services.close()
