"""``palaute clock``: the scheduler process.

It runs, on an APScheduler ``BlockingScheduler`` (one interval job each; coalesced, never
overlapping themselves): the follow-up dispatcher (``service.followups``), the outbox
workers (``service.sms_outbox``, ``service.telegram_outbox``: ``CLOCK_OUTBOX_WORKERS`` per
configured channel) and the run-expiry sweep. Run one or more: they share the work through
the database.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from palaute.services import Services
from service.followups import FollowupDispatcher
from service.sms_outbox import SmsOutbox
from service.telegram_outbox import TelegramOutbox
from service.timesource import utcnow
from storage.errors import StorageError

log = logging.getLogger(__name__)


@dataclass
class ClockJobs:
    """The callables the scheduler runs, built from the app's services."""

    services: Services
    dispatcher: FollowupDispatcher
    outbox_ticks: list[Callable[[], Any]] = field(default_factory=list)

    def followups(self) -> None:
        settings = self.services.settings
        try:
            report = self.dispatcher.run_until_idle(
                settings.clock_batch_size, budget=max(1.0, settings.clock_interval_seconds * 6)
            )
        except StorageError as error:
            log.error("follow-ups: %s (will retry next tick)", error)
            return
        if report.claimed:
            log.info("follow-ups: %s", report)

    def outbox(self) -> None:
        for index in range(len(self.outbox_ticks)):
            self.outbox_tick(index)

    def outbox_tick(self, index: int) -> None:
        try:
            self.outbox_ticks[index]()
        except StorageError as error:
            log.error("outbox: %s (will retry next tick)", error)

    def expire_runs(self) -> None:
        try:
            expired = self.services.conversations.expire_due(self.dispatcher.clock())
        except StorageError as error:
            log.error("run expiry: %s (will retry next tick)", error)
            return
        if expired:
            log.info("expired %d unanswered runs", expired)


def build_jobs(services: Services, *, worker_id: str | None = None) -> ClockJobs:
    settings = services.settings
    dispatcher = FollowupDispatcher(
        services.db,
        services.conversations,
        services.catalogue,
        worker_id=worker_id,
        lease=timedelta(seconds=settings.clock_lease_seconds),
    )
    jobs = ClockJobs(services, dispatcher)
    jobs.outbox_ticks.extend(_outbox_ticks(services))
    return jobs


def _outbox_ticks(services: Services) -> list[Callable[[], Any]]:
    """ "Send what is due" callables: ``CLOCK_OUTBOX_WORKERS`` per configured channel.

    Several senders per channel overlap database and provider round trips; they share the
    outbox safely (leased claims) and the sender's rate limit (kept in the database).
    """
    ticks: list[Callable[[], Any]] = []
    copies = max(1, services.settings.clock_outbox_workers)
    limit = services.settings.clock_batch_size
    budget = max(1.0, services.settings.clock_interval_seconds * 6)
    builders: list[Callable[[], SmsOutbox | TelegramOutbox | None]] = [
        services.sms_outbox,
        services.telegram_outbox,
    ]
    for build in builders:
        for _ in range(copies):
            worker = build()
            if worker is None:
                break

            def tick(worker: SmsOutbox | TelegramOutbox = worker) -> None:
                worker.run_for(limit, budget)

            ticks.append(tick)
    return ticks


def run_clock(services: Services, *, worker_id: str | None = None) -> None:
    """Block running the jobs until SIGINT/SIGTERM; claims in hand are given back."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    settings = services.settings
    jobs = build_jobs(services, worker_id=worker_id)
    scheduler = BlockingScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    )
    every = settings.clock_interval_seconds
    scheduler.add_job(
        jobs.followups, "interval", seconds=every, id="followups", next_run_time=utcnow()
    )
    for index in range(len(jobs.outbox_ticks)):
        scheduler.add_job(
            jobs.outbox_tick,
            "interval",
            args=[index],
            seconds=every,
            id=f"outbox-{index}",
            next_run_time=utcnow(),
        )
    # A job still busy when its next run comes is the normal case here (it loops until
    # idle); APScheduler would log a warning for each skipped run.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    scheduler.add_job(jobs.expire_runs, "interval", seconds=max(every, 60.0), id="expire_runs")

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping after the current follow-up", signum)
        jobs.dispatcher.stopping.set()
        raise SystemExit(0)  # leaves scheduler.start() in the main thread

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "clock %s: every %.1fs, batches of %d, lease %.0fs",
        jobs.dispatcher.worker_id,
        every,
        settings.clock_batch_size,
        settings.clock_lease_seconds,
    )
    try:
        scheduler.start()
    except SystemExit:
        pass
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)  # running jobs see `stopping` and give claims back
