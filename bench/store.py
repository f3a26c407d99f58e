"""Storage throughput: persisted answers per second through the conversation service.

Each simulated citizen texts the keyword and answers a 3-question survey over SMS:
four ``ConversationService.handle`` calls (one transaction each: contact lock, dedupe,
inbound row, run update, answer row, reply row), three stored answers.

The baseline, measured in the same run on the same database, is the least a store can
do per answer: one raw ``INSERT INTO answers`` of the same row, committed on its own
(the service also commits once per message). The ratio says what the whole turn costs
on top of that bare insert.

    .venv/bin/python -m bench.store [--citizens 300] [--threads 4]
        [--backends sqlite,postgres] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import make_url

from bot.catalogue import Catalogue
from bot.messages import Inbound
from service.conversations import ConversationService
from storage import migrate
from storage.db import make_engine

T0 = datetime(2026, 5, 14, 9, 0, tzinfo=UTC)

FLOW = """\
id: bench
title: {fi: Kysely, sv: Enkät, en: Survey}
languages: [fi, sv, en]
default_language: fi
triggers:
  keywords: {fi: [PALAUTE], sv: [RESPONS], en: [FEEDBACK]}
steps:
  - id: overall
    type: scale
    scale: 1-5
    text: {fi: "Miten onnistuimme? 1-5", sv: "Hur lyckades vi? 1-5", en: "How did we do? 1-5"}
  - id: liked
    type: text
    optional: true
    text: {fi: "Mistä pidit?", sv: "Vad tyckte du om?", en: "What did you like?"}
  - id: recommend
    type: nps
    text: {fi: "Suosittelisitko? 0-10", sv: "Rekommendera? 0-10", en: "Recommend? 0-10"}
closing: {fi: Kiitos!, sv: Tack!, en: Thank you!}
"""
REPLIES = ("PALAUTE", "5", "Hyvä valikoima ja ystävällinen henkilökunta", "9")


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="palaute-bench-") as folder:
        yield f"sqlite:///{Path(folder) / 'bench.sqlite3'}"


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    name = f"palaute_bench_{secrets.token_hex(6)}"
    libpq = make_url(admin_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(libpq, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(False)
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def timed(work: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = work()
    return count, time.perf_counter() - started


def in_threads(threads: int, work: Callable[[int], int]) -> int:
    totals = [0] * threads
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            totals[index] = work(index)
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return sum(totals)


def bench(url: str, citizens: int, threads: int, flows_dir: Path) -> dict[str, float]:
    migrate.upgrade(url)
    engine = make_engine(url)
    service = ConversationService(engine, Catalogue.load(flows_dir), address_key_secret="bench")
    try:

        def survey(prefix: str, first: int, count: int) -> int:
            answers = 0
            for n in range(first, first + count):
                address = f"+35840{prefix}{n:06d}"
                for turn, text in enumerate(REPLIES):
                    inbound = Inbound("sms", address, text, provider_id=f"SM{prefix}{n}-{turn}")
                    service.handle(inbound, T0 + timedelta(seconds=turn))
                answers += len(REPLIES) - 1
            return answers

        survey("9", 0, 10)  # warm up: connections, statement caches, flow source
        answers, seconds = timed(lambda: survey("1", 0, citizens))
        service_rate = answers / seconds

        per_thread = max(1, citizens // threads)
        threaded_answers, threaded_seconds = timed(
            lambda: in_threads(threads, lambda i: survey("2", i * per_thread, per_thread))
        )
        threaded_rate = threaded_answers / threaded_seconds

        # Baseline: the same answer rows, one raw INSERT + COMMIT each.
        with engine.connect() as connection:
            row = connection.execute(
                sa.text("SELECT run_id, contact_id FROM answers ORDER BY id LIMIT 1")
            ).one()
        insert = sa.text(
            "INSERT INTO answers (run_id, contact_id, flow_id, flow_version, step_id, "
            "value_int, value_text, raw_text, language, service_point, answered_at, skipped, "
            "truncated) VALUES (:run, :contact, 'bench', 'v', :step, :vi, :vt, :raw, 'fi', "
            "NULL, :at, false, false)"
        )
        at = T0.replace(tzinfo=None) if engine.dialect.name == "sqlite" else T0

        def baseline() -> int:
            for n in range(answers):
                text = REPLIES[1 + n % 3]
                with engine.begin() as connection:
                    connection.execute(
                        insert,
                        {
                            "run": row.run_id,
                            "contact": row.contact_id,
                            "step": f"b{n}",
                            "vi": int(text) if text.isdigit() else None,
                            "vt": None if text.isdigit() else text,
                            "raw": text,
                            "at": at,
                        },
                    )
            return answers

        base_answers, base_seconds = timed(baseline)
        base_rate = base_answers / base_seconds
        return {
            "service": service_rate,
            "threaded": threaded_rate,
            "baseline": base_rate,
            "handles": service_rate * len(REPLIES) / (len(REPLIES) - 1),
        }
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=300)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "PALAUTE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="palaute-bench-flows-") as folder:
        flows_dir = Path(folder)
        (flows_dir / "bench.yaml").write_text(FLOW, encoding="utf-8")
        for backend in args.backends.split(","):
            database = sqlite_database() if backend == "sqlite" else postgres_database(args.pg_url)
            try:
                with database as url:
                    result = bench(url, args.citizens, args.threads, flows_dir)
            except (psycopg.OperationalError, sa.exc.OperationalError) as error:
                print(f"{backend:8s} skipped: {str(error).strip().splitlines()[0]}")
                continue
            print(
                f"{backend:8s} service: {result['service']:8.0f} answers/s "
                f"({result['handles']:.0f} messages/s, 1 thread)   "
                f"{args.threads} threads: {result['threaded']:8.0f} answers/s   "
                f"baseline raw INSERT+COMMIT: {result['baseline']:8.0f} answers/s   "
                f"ratio service/baseline: {result['service'] / result['baseline']:.2f}"
            )


if __name__ == "__main__":
    main()
