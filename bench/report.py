"""Report speed on a million answers: the flow overview, a 2-year weekly trend, comment
pages and the full export, on SQLite and PostgreSQL.

The data (default 200,000 completed runs x 5 answers = 1,000,000 answers, 20 service
points, two years, 1% simulator test data) is inserted with bulk SQL straight into the
tables (executemany on SQLite, COPY on PostgreSQL), then ANALYZEd as autovacuum or
``palaute db`` maintenance would. Each query goes through ``ResultsService`` as the
dashboard and ``palaute results`` call it, and is timed three times (median and worst).
The export runs in a child process, which prints its own peak RSS.

    .venv/bin/python -m bench.report [--runs 200000] [--backends sqlite,postgres]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--no-xlsx]

Targets: each query under 1 s; the export's peak RSS under 300 MB.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.harness import database
from bot.catalogue import Catalogue, flow_version
from service.exports import write_csv, write_xlsx
from service.reports import Period, ResultsFilter, ResultsService
from storage.contacts import ContactStore, find_or_create_many
from storage.db import make_engine, transaction

FLOW = """\
id: bench-visit
title: {fi: Käynti, sv: Besök, en: Visit}
languages: [fi, sv, en]
default_language: fi
steps:
  - id: overall
    type: scale
    scale: 1-5
    metric: csat
    text: {fi: "Miten onnistuimme? 1-5", sv: "Hur lyckades vi? 1-5", en: "How did we do? 1-5"}
  - id: comment
    type: text
    optional: true
    text: {fi: "Kerro lisää", sv: "Berätta mer", en: "Tell us more"}
  - id: experience
    type: choice
    metric: fft
    text: {fi: "Kokemus 1-6", sv: "Upplevelse 1-6", en: "Experience 1-6"}
    options:
      - {id: very_good, score: 5, label: {fi: Erittäin hyvä, sv: Mycket bra, en: Very good}}
      - {id: good, score: 4, label: {fi: Hyvä, sv: Bra, en: Good}}
      - {id: neither, score: 3, label: {fi: Ei hyvä eikä huono, sv: Varken eller, en: Neither}}
      - {id: poor, score: 2, label: {fi: Huono, sv: Dålig, en: Poor}}
      - {id: very_poor, score: 1, label: {fi: Erittäin huono, sv: Mycket dålig, en: Very poor}}
      - {id: dont_know, score: null, label: {fi: En osaa sanoa, sv: Vet inte, en: Don't know}}
  - id: recommend
    type: nps
    text: {fi: "Suosittelisitko? 0-10", sv: "Rekommendera? 0-10", en: "Recommend? 0-10"}
  - id: reason
    type: choice
    text: {fi: "Asia 1-3", sv: "Ärende 1-3", en: "Reason 1-3"}
    options:
      - {id: books, label: {fi: Kirjat, sv: Böcker, en: Books}}
      - {id: event, label: {fi: Tapahtuma, sv: Evenemang, en: Event}}
      - {id: other, label: {fi: Muu, sv: Annat, en: Other}}
closing: {fi: Kiitos!, sv: Tack!, en: Thank you!}
"""
END = datetime(2026, 11, 30, tzinfo=UTC)
DAYS = 730
POINTS = [f"point-{n:02d}" for n in range(20)]
WORDS = [
    "jono oli pitkä",
    "ystävällinen henkilökunta",
    "hyvä valikoima",
    "äänekäs lukusali",
    "aukioloajat sopivat",
    "trevlig personal",
    "long queue at the desk",
    "kiitos avusta",
]
EXPERIENCE = ["very_good", "good", "neither", "poor", "very_poor", "dont_know"]


def _rows(
    runs: int, contacts: dict[str, list[int]], seed: int = 14
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    rng = random.Random(seed)
    start = END - timedelta(days=DAYS)
    for n in range(1, runs + 1):
        test = rng.random() < 0.01
        channel = "simulator" if test else ("sms" if rng.random() < 0.7 else "telegram")
        language = rng.choices(["fi", "sv", "en"], [0.8, 0.15, 0.05])[0]
        point = POINTS[n % len(POINTS)]
        started = start + timedelta(seconds=rng.randrange(DAYS * 86400))
        overall = rng.choices([1, 2, 3, 4, 5], [0.05, 0.07, 0.13, 0.35, 0.40])[0]
        run = {
            "id": n,
            "contact_id": contacts[channel][n % len(contacts[channel])],
            "channel": channel,
            "is_test": test,
            "language": language,
            "service_point": point,
            "started_at": started,
            "completed_at": started + timedelta(minutes=3),
        }
        commented = rng.random() < 0.4
        values: list[tuple[str, int | None, str | None, bool]] = [
            ("overall", overall, None, False),
            ("comment", None, rng.choice(WORDS) if commented else None, not commented),
            ("experience", None, rng.choices(EXPERIENCE, [40, 35, 12, 6, 3, 4])[0], False),
            (
                "recommend",
                rng.choices(range(11), [1, 1, 1, 1, 2, 3, 4, 8, 15, 25, 39])[0],
                None,
                False,
            ),
            ("reason", None, rng.choice(["books", "event", "other"]), False),
        ]
        answers = [
            {
                "run_id": n,
                "contact_id": run["contact_id"],
                "step_id": step,
                "value_int": value_int,
                "value_text": value_text,
                "raw_text": value_text or str(value_int or ""),
                "language": language,
                "service_point": point,
                "channel": channel,
                "is_test": test,
                "answered_at": started + timedelta(seconds=20 * index + 10),
                "skipped": skipped,
            }
            for index, (step, value_int, value_text, skipped) in enumerate(values)
        ]
        yield run, answers


CONTACTS = {"sms": 1400, "telegram": 600, "simulator": 20}


def make_contacts(url: str) -> dict[str, list[int]]:
    """Contacts per channel, made through storage (only it writes addresses); the runs
    are spread over them (reports never look at who answered)."""
    engine = make_engine(url)
    store = ContactStore("bench")
    wanted = [
        (channel, f"+35840{index:07d}" if channel == "sms" else f"{channel}-{index}")
        for channel, count in CONTACTS.items()
        for index in range(count)
    ]
    try:
        with transaction(engine) as session:
            found = find_or_create_many(store, session, wanted, END)
    finally:
        engine.dispose()
    ids: dict[str, list[int]] = {}
    for (channel, _), contact in found.items():
        ids.setdefault(channel, []).append(contact.id)
    return {channel: sorted(values) for channel, values in ids.items()}


def populate(url: str, runs: int) -> int:
    """Insert the runs and their answers with bulk SQL; returns the number of answers."""
    version = flow_version(FLOW)
    contacts = make_contacts(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return _populate_sqlite(url, runs, version, contacts)
    return _populate_postgres(url, runs, version, contacts)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _populate_sqlite(url: str, runs: int, version: str, contacts: dict[str, list[int]]) -> int:
    import sqlite3

    connection = sqlite3.connect(str(make_url(url).database))
    count = 0
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")
        with connection:
            connection.execute(
                "INSERT INTO flow_versions (flow_id, version, source, first_seen_at) "
                "VALUES ('bench-visit', ?, ?, ?)",
                (version, FLOW, _iso(END)),
            )
            run_rows: list[Any] = []
            answer_rows: list[Any] = []
            for run, answers in _rows(runs, contacts):
                at, done = _iso(run["started_at"]), _iso(run["completed_at"])
                key = run["id"]
                run_rows.append(
                    (
                        key,
                        run["contact_id"],
                        version,
                        run["language"],
                        run["service_point"],
                        run["channel"],
                        run["is_test"],
                        at,
                        done,
                        done,
                        done,
                    )
                )
                for a in answers:
                    answer_rows.append(
                        (
                            a["run_id"],
                            a["contact_id"],
                            version,
                            a["step_id"],
                            a["value_int"],
                            a["value_text"],
                            a["raw_text"],
                            a["language"],
                            a["service_point"],
                            a["channel"],
                            a["is_test"],
                            _iso(a["answered_at"]),
                            a["skipped"],
                        )
                    )
                count += len(answers)
                if len(answer_rows) >= 100_000:
                    _flush_sqlite(connection, run_rows, answer_rows)
            _flush_sqlite(connection, run_rows, answer_rows)
        connection.execute("ANALYZE")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return count


def _flush_sqlite(connection: Any, runs: list[Any], answers: list[Any]) -> None:
    connection.executemany(
        "INSERT INTO flow_runs (id, contact_id, flow_id, flow_version, status, language, "
        "service_point, channel, is_test, state, started_at, updated_at, completed_at, "
        "expires_at) VALUES (?, ?, 'bench-visit', ?, 'completed', ?, ?, ?, ?, '{}', "
        "?, ?, ?, ?)",
        runs,
    )
    connection.executemany(
        "INSERT INTO answers (run_id, contact_id, flow_id, flow_version, step_id, value_int, "
        "value_text, raw_text, language, service_point, channel, is_test, answered_at, "
        "skipped, truncated) VALUES (?, ?, 'bench-visit', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        answers,
    )
    runs.clear()
    answers.clear()


def _populate_postgres(url: str, runs: int, version: str, contacts: dict[str, list[int]]) -> int:
    libpq = make_url(url).set(drivername="postgresql").render_as_string(False)
    count = 0
    with psycopg.connect(libpq) as connection:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO flow_versions (flow_id, version, source, first_seen_at) "
                "VALUES ('bench-visit', %s, %s, %s)",
                (version, FLOW, END),
            )
            with cursor.copy(
                "COPY flow_runs (id, contact_id, flow_id, flow_version, status, language, "
                "service_point, channel, is_test, state, started_at, updated_at, completed_at, "
                "expires_at) FROM STDIN"
            ) as copy:
                for run, _ in _rows(runs, contacts):
                    done = run["completed_at"]
                    copy.write_row(
                        (
                            run["id"],
                            run["contact_id"],
                            "bench-visit",
                            version,
                            "completed",
                            run["language"],
                            run["service_point"],
                            run["channel"],
                            run["is_test"],
                            "{}",
                            run["started_at"],
                            done,
                            done,
                            done,
                        )
                    )
            with cursor.copy(
                "COPY answers (run_id, contact_id, flow_id, flow_version, step_id, value_int, "
                "value_text, raw_text, language, service_point, channel, is_test, answered_at, "
                "skipped, truncated) FROM STDIN"
            ) as copy:
                for _, answers in _rows(runs, contacts):
                    for a in answers:
                        copy.write_row(
                            (
                                a["run_id"],
                                a["contact_id"],
                                "bench-visit",
                                version,
                                a["step_id"],
                                a["value_int"],
                                a["value_text"],
                                a["raw_text"],
                                a["language"],
                                a["service_point"],
                                a["channel"],
                                a["is_test"],
                                a["answered_at"],
                                a["skipped"],
                                False,
                            )
                        )
                        count += 1
            for table in ("flow_runs", "answers"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")
    return count


def _timed(work: Callable[[], object], repeat: int = 3) -> tuple[float, float, float]:
    """Median and worst wall time, and the median CPU time of this process (on SQLite
    that is the query's own work; on a shared, loaded machine wall time is not)."""
    times, cpu = [], []
    for _ in range(repeat):
        started, used = time.perf_counter(), time.process_time()
        work()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    return statistics.median(times), max(times), statistics.median(cpu)


def _service(url: str, flows: Path) -> ResultsService:
    return ResultsService(make_engine(url), Catalogue.load(flows), timezone="Europe/Helsinki")


def queries(url: str, flows: Path) -> dict[str, tuple[float, float, float]]:
    service = _service(url, flows)
    everything = ResultsFilter(flow_id="bench-visit")
    two_years = ResultsFilter(
        flow_id="bench-visit", date_from=date(2024, 12, 1), date_to=date(2026, 11, 30)
    )
    point = ResultsFilter(flow_id="bench-visit", point="point-07")
    deep = _cursor_of_page(service, point, 50)
    figures = {
        "flow overview (5 steps, every answer)": _timed(lambda: service.summary(everything)),
        "overview of one point, one language": _timed(
            lambda: service.summary(
                ResultsFilter(flow_id="bench-visit", point="point-07", language="sv")
            )
        ),
        "2-year weekly trend (csat, 105 weeks)": _timed(
            lambda: service.trend(two_years, Period.WEEK)
        ),
        "2-year daily trend (730 days)": _timed(lambda: service.trend(two_years, Period.DAY)),
        "comment page, newest 20": _timed(lambda: service.comments(everything)),
        "comment page, point + score 1-2": _timed(
            lambda: service.comments(point, scores=["1", "2"])
        ),
        "comment page, point + search 'äänekäs'": _timed(
            lambda: service.comments(point, search="äänekäs")
        ),
        "comment page 50 (keyset), point + score": _timed(
            lambda: service.comments(point, scores=["1", "2"], cursor=deep)
        ),
    }
    service.engine.dispose()
    return figures


def _cursor_of_page(service: ResultsService, where: ResultsFilter, page: int) -> str | None:
    cursor = None
    for _ in range(page - 1):
        cursor = service.comments(where, scores=["1", "2"], cursor=cursor).next_cursor
    return cursor


def export_in_child(url: str, flows: Path, file_format: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="palaute-export-") as folder:
        out = Path(folder) / f"export.{file_format}"
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.report",
                "--child-export",
                url,
                str(flows),
                file_format,
                str(out),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        figures: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
        figures["megabytes"] = out.stat().st_size / 1e6
        return figures


def child_export(url: str, flows: Path, file_format: str, out: Path) -> None:
    service = _service(url, flows)
    everything = ResultsFilter(flow_id="bench-visit")
    started = time.perf_counter()
    if file_format == "csv":
        with out.open("wb") as stream:
            rows = write_csv(service, everything, stream, language="fi")
    else:
        rows = write_xlsx(service, everything, out, language="fi")
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mb": peak_mb}))
    service.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200_000, help="completed runs (5 answers each)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-xlsx", action="store_true", help="skip the (slower) XLSX export")
    parser.add_argument("--child-export", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_export:
        url, flows, file_format, out = args.child_export
        child_export(url, Path(flows), file_format, Path(out))
        return
    with tempfile.TemporaryDirectory(prefix="palaute-bench-flows-") as folder:
        flows = Path(folder)
        (flows / "bench-visit.yaml").write_text(FLOW, encoding="utf-8")
        for backend in args.backends.split(","):
            with database(backend, args.pg_url) as url:
                started = time.perf_counter()
                answers = populate(url, args.runs)
                print(
                    f"\n{backend}: {args.runs:,} runs, {answers:,} answers inserted in "
                    f"{time.perf_counter() - started:.1f} s"
                )
                for name, (median, worst, cpu) in queries(url, flows).items():
                    flag = "" if worst < 1 else "  (over 1 s)"
                    print(
                        f"  {name:<45} median {median * 1000:7.1f} ms  "
                        f"worst {worst * 1000:7.1f} ms  cpu {cpu * 1000:7.1f} ms{flag}"
                    )
                for file_format in ("csv",) if args.no_xlsx else ("csv", "xlsx"):
                    figures = export_in_child(url, flows, file_format)
                    print(
                        f"  export {file_format:<4} {figures['rows']:>9,.0f} rows "
                        f"{figures['seconds']:6.1f} s  {figures['megabytes']:6.1f} MB  "
                        f"peak RSS {figures['peak_rss_mb']:.0f} MB"
                    )


if __name__ == "__main__":
    io.DEFAULT_BUFFER_SIZE = 1 << 16
    main()
