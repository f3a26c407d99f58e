"""Follow-up dispatch: visits -> two `palaute clock` processes -> the fake Twilio API.

For each size (``--count`` and a tenth of it) the bench

1. makes a fresh PostgreSQL database and schedules that many visits, each a different
   person, all due now (``service.visits.store_visits``, as the API and CSV import do);
2. starts two real ``palaute clock`` processes pointed at a loopback fake Twilio API
   (``fakes/twilio_api.py``) with a high SMS rate limit;
3. waits until the fake has accepted one SMS per visit and reports messages/s (from the
   clocks' start, and between the first and the last message), duplicates (numbers that
   got more than one SMS: must be 0), follow-ups not sent (must be 0), each clock
   process's peak resident memory (VmHWM), which must stay flat as the count grows, and
   "queued/s": follow-ups turned into started runs with their prompt queued, per second
   from the clocks' start (the follow-up stage alone, before the SMS outbox sends).

Baseline, measured in the same run: the same fake API driven directly by the clocks'
sending setup (two processes, each with CLOCK_OUTBOX_WORKERS senders of SEND_THREADS
threads of ``TwilioSender``; no database, no clock) - the most the loopback provider
itself takes. The ratio says how much of it the whole pipeline reaches.

Target (issue 6): >= 1,000 messages/s when the rate limit allows it.

    .venv/bin/python -m bench.dispatch [--count 100000] [--rate 100000]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from bot.catalogue import Catalogue
from channels.twilio.sender import TwilioSender
from fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioAPI
from service.visits import Intake, Visit, store_visits
from storage import migrate
from storage.contacts import ContactStore
from storage.db import make_engine

SECRET = "bench-address-key"
FROM = "+358451234567"
FLOW = """\
id: bench-followup
title: {fi: Käynti, sv: Besök, en: Visit}
languages: [fi, sv, en]
default_language: fi
steps:
  - id: rating
    type: scale
    scale: 1-5
    text:
      fi: Miten käyntisi sujui? Vastaa 1-5.
      sv: Hur gick ditt besök? Svara 1-5.
      en: How did your visit go? Reply 1-5.
closing: {fi: Kiitos!, sv: Tack!, en: Thank you!}
followup:
  delay: 2h
  window: {start: "00:00", end: "24:00", days: [mon, tue, wed, thu, fri, sat, sun]}
  give_up_after: 3d
"""


@dataclass
class Round:
    count: int
    schedule_seconds: float
    wall_seconds: float
    steady_rate: float
    duplicates: int
    not_sent: int
    peak_kib: list[int]
    queue_rate: float = 0.0  # follow-ups turned into queued prompts per second (stage 1)

    @property
    def wall_rate(self) -> float:
        return self.count / self.wall_seconds


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Databases:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def create(self) -> str:
        name = f"palaute_bench_{secrets.token_hex(5)}"
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        return url

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with psycopg.connect(_libpq(self.admin_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def schedule(url: str, flows_dir: Path, count: int) -> float:
    """Store ``count`` visits of different people, all due now. Returns seconds taken."""
    engine = make_engine(url)
    contacts = ContactStore(SECRET)
    now = datetime.now(UTC)
    intake = Intake(flows=Catalogue.load(flows_dir), organisation="Bench")
    started = time.perf_counter()
    visit_at = (now - timedelta(hours=2, minutes=1)).isoformat()
    batch: list[Visit] = []
    for i in range(count):
        raw = {"external_id": f"V-{i}", "visit_at": visit_at, "phone": f"+35850{i:07d}"}
        outcome = intake.validate(raw, source="bench", now=now)
        assert isinstance(outcome, Visit), outcome
        batch.append(outcome)
        if len(batch) == 1000:
            store_visits(engine, contacts, batch, now)
            batch.clear()
            if (i + 1) % 20_000 == 0:
                analyze(engine)  # as autovacuum would while the tables fill up
    store_visits(engine, contacts, batch, now)
    engine.dispose()
    return time.perf_counter() - started


TABLES = ("messages", "followups", "visits", "contacts", "flow_runs", "sms_send_attempts")


def analyze(engine: Engine) -> None:
    """Refresh the planner's statistics, as autovacuum does (the test server runs with
    ``autovacuum = off``).

    Like autovacuum, only tables that have rows: an ANALYZE of a still empty table records
    it as empty, and every foreign-key check into it (``messages.run_id`` ->
    ``flow_runs``, ``sms_send_attempts.message_id`` -> ``messages``) would then be planned
    as a sequential scan, slower with every row added until the next ANALYZE - a state
    autovacuum never leaves a busy table in.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in TABLES:
            if conn.exec_driver_sql(f"SELECT EXISTS (SELECT FROM {table})").scalar_one():
                conn.exec_driver_sql(f"ANALYZE {table}")


def peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def dispatch(url: str, flows_dir: Path, fake: FakeTwilioAPI, count: int, rate: float) -> Round:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        FLOWS_DIR=str(flows_dir),
        ADDRESS_KEY_SECRET=SECRET,
        ORGANISATION_NAME="Bench",
        TWILIO_ACCOUNT_SID=fake.account_sid,
        TWILIO_AUTH_TOKEN=fake.auth_token,
        TWILIO_FROM_NUMBER=FROM,
        TWILIO_API_BASE_URL=fake.base_url,
        PUBLIC_BASE_URL="",
        SMS_RATE_PER_SECOND=str(rate),
        CLOCK_INTERVAL_SECONDS="0.2",
        CLOCK_BATCH_SIZE="100",
        LOG_LEVEL="WARNING",
        TELEGRAM_BOT_TOKEN="",
    )
    palaute = str(Path(sys.executable).parent / "palaute")
    logs = [(flows_dir.parent / f"clock-{n}-{count}.log").open("w+") for n in (1, 2)]
    started = time.perf_counter()
    clocks = [
        subprocess.Popen(
            [palaute, "clock", "--worker-id", f"bench-{n}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        for n, log in zip((1, 2), logs, strict=True)
    ]
    first_at: float | None = None
    queued_at: float | None = None
    engine = make_engine(url, pool_size=1, max_overflow=0)
    analyze(engine)
    deadline = started + max(300.0, count / 10)
    polls = 0
    while time.perf_counter() < deadline:
        received = len(fake.messages)
        if received and first_at is None:
            first_at = time.perf_counter()
        if queued_at is None and polls % 25 == 0:
            with engine.connect() as conn:
                queued = conn.exec_driver_sql(
                    "SELECT count(*) FROM followups WHERE status = 'sent'"
                ).scalar_one()
            if queued >= count:
                queued_at = time.perf_counter()
        if received >= count or any(c.poll() is not None for c in clocks):
            break
        if polls % 500 == 250:
            analyze(engine)  # what autovacuum would do every so often in production
        polls += 1
        time.sleep(0.02)
    done_at = time.perf_counter()
    if queued_at is None:  # the last poll came before the follow-up stage finished
        with engine.connect() as conn:
            queued = conn.exec_driver_sql(
                "SELECT count(*) FROM followups WHERE status = 'sent'"
            ).scalar_one()
        if queued >= count:
            queued_at = done_at
    time.sleep(1.0)  # a late duplicate would show up now
    peaks = [peak_kib(c.pid) for c in clocks]
    for clock in clocks:
        if clock.poll() is None:
            clock.send_signal(signal.SIGTERM)
    for clock, log in zip(clocks, logs, strict=True):
        clock.wait(timeout=60)
        log.seek(0)
        lines = log.read().splitlines()
        log.close()
        if clock.returncode != 0 or lines:
            print(f"clock {clock.pid} exited {clock.returncode}; {len(lines)} log lines, last:")
            print("\n".join(lines[-5:]))
    numbers = [m["to"] for m in fake.messages]
    with engine.connect() as conn:
        not_sent = conn.exec_driver_sql(
            "SELECT count(*) FROM followups WHERE status <> 'sent'"
        ).scalar_one()
    engine.dispose()
    received = len(numbers)
    steady = (received - 1) / (done_at - first_at) if first_at and received > 1 else 0.0
    return Round(
        count=count,
        schedule_seconds=0.0,
        wall_seconds=done_at - started,
        steady_rate=steady,
        duplicates=received - len(set(numbers)),
        not_sent=int(not_sent) + max(0, count - len(set(numbers))),
        peak_kib=peaks,
        queue_rate=count / (queued_at - started) if queued_at else 0.0,
    )


# How the clocks send: CLOCK_OUTBOX_WORKERS senders per process, each with up to
# SEND_THREADS requests in flight (service.sms_outbox.SmsOutbox.send_threads).
PROCESSES = 2
OUTBOX_WORKERS = 2
SEND_THREADS = 4


def drive(base_url: str, first: int, step: int, count: int) -> None:
    """One baseline process: OUTBOX_WORKERS senders x SEND_THREADS threads, no database."""
    senders = [
        TwilioSender(ACCOUNT_SID, AUTH_TOKEN, from_number=FROM, base_url=base_url)
        for _ in range(OUTBOX_WORKERS)
    ]
    lanes = len(senders) * SEND_THREADS

    def work(sender: TwilioSender, lane: int) -> None:
        for i in range(first + lane * step, count, step * lanes):
            sender.send(f"+35840{i:07d}", "Miten käyntisi sujui? Vastaa 1-5.")

    threads = [
        threading.Thread(target=work, args=(senders[lane % len(senders)], lane))
        for lane in range(lanes)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def baseline(fake: FakeTwilioAPI, count: int) -> float:
    """SMS/s the fake API takes from the clocks' sending setup, nothing else: PROCESSES
    processes of OUTBOX_WORKERS x SEND_THREADS threads of the real sender."""
    started = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "bench.dispatch",
        "--count",
        str(count),
        "--drive",
        fake.base_url,
    ]
    drivers = [subprocess.Popen([*command, str(n), str(PROCESSES)]) for n in range(PROCESSES)]
    for driver in drivers:
        if driver.wait(timeout=300) != 0:
            raise SystemExit(f"baseline driver exited {driver.returncode}")
    took = time.perf_counter() - started
    assert len(fake.messages) == count, (len(fake.messages), count)
    with fake._lock:
        fake.messages.clear()
        fake.requests.clear()
    return count / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="visits in the big round")
    parser.add_argument("--rate", type=float, default=100_000, help="SMS_RATE_PER_SECOND")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "PALAUTE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--drive", nargs=3, metavar=("URL", "FIRST", "STEP"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.drive:
        url, first, step = args.drive
        drive(url, int(first), int(step), args.count)
        return
    sizes = [max(1, args.count // 10), args.count]
    databases = Databases(args.pg_url)
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory() as tmp, FakeTwilioAPI() as fake:
        flows_dir = Path(tmp) / "flows"
        flows_dir.mkdir()
        (flows_dir / "bench-followup.yaml").write_text(FLOW, encoding="utf-8")
        base = baseline(fake, min(4000, args.count))
        for size in sizes:
            with fake._lock:
                fake.messages.clear()
                fake.requests.clear()
            url = databases.create()
            try:
                took = schedule(url, flows_dir, size)
                print(f"scheduled {size:,} visits in {took:.1f} s ({size / took:,.0f}/s)")
                result = dispatch(url, flows_dir, fake, size, args.rate)
                result.schedule_seconds = took
                rounds.append(result)
            finally:
                databases.drop(url)

    print()
    print(
        f"baseline: fake Twilio API driven by {PROCESSES} processes x {OUTBOX_WORKERS} senders x "
        f"{SEND_THREADS} threads, no database: {base:,.0f} SMS/s"
    )
    print(
        f"{'visits':>9} {'msg/s (wall)':>13} {'msg/s (steady)':>15} {'vs baseline':>12} "
        f"{'duplicates':>11} {'not sent':>9} {'peak RSS per clock (MiB)':>26} "
        f"{'queued/s':>9}"
    )
    for r in rounds:
        peaks = " / ".join(f"{p / 1024:.0f}" for p in r.peak_kib)
        print(
            f"{r.count:>9,} {r.wall_rate:>13,.0f} {r.steady_rate:>15,.0f} "
            f"{r.steady_rate / base:>11.2f}x {r.duplicates:>11} {r.not_sent:>9} {peaks:>26} "
            f"{r.queue_rate:>9,.0f}"
        )
    small, big = rounds[0], rounds[-1]
    growth = max(big.peak_kib) / max(1, max(small.peak_kib))
    print(
        f"peak memory x{growth:.2f} for x{big.count / small.count:.0f} visits "
        f"({'flat' if growth < 1.25 else 'GROWS'}); target >= 1,000 msg/s: "
        f"{'met' if big.steady_rate >= 1000 else 'NOT met'} ({big.steady_rate:,.0f})"
    )


if __name__ == "__main__":
    main()
