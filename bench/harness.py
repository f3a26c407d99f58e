"""What the webhook benchmarks share: results, gunicorn on a free loopback port, databases.

``bench/webhook_sms.py`` and ``bench/webhook_telegram.py`` run the app and a bare Flask
endpoint under the same gunicorn settings and compare them; only the payloads differ.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from storage import migrate

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0  # not 200, not the expected reply shape, or not the next prompt
    duplicates: int = 0  # redelivered requests answered exactly like the first time
    duplicate_mismatches: int = 0
    samples: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0

    def line(self) -> str:
        return (
            f"{self.name:<22} {self.requests:>6} req  {self.rps:>8.1f} req/s  "
            f"p50 {self.percentile(0.50):>6.1f} ms  p99 {self.percentile(0.99):>7.1f} ms  "
            f"errors {self.errors}  duplicates {self.duplicates}"
            + (f" ({self.duplicate_mismatches} answered differently)"
               if self.duplicate_mismatches else "")
        )  # fmt: skip


def merge(name: str, parts: list[Result]) -> Result:
    total = Result(name)
    for part in parts:
        total.seconds += part.seconds
        total.latencies.extend(part.latencies)
        total.errors += part.errors
        total.duplicates += part.duplicates
        total.duplicate_mismatches += part.duplicate_mismatches
        total.samples.extend(part.samples)
    return total


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(
    app_spec: str, env: dict[str, str], warm_up: Callable[[int], None], threads: int = 1
) -> Iterator[int]:
    """Two gunicorn workers serving ``app_spec`` on a free port, warmed by ``warm_up(port)``."""
    port = free_port()
    process = subprocess.Popen(
        [GUNICORN, "-w", "2", "--threads", str(threads), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "--chdir", str(ROOT), app_spec],
        env={**os.environ, **env},
        cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn {app_spec} exited with {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn {app_spec} did not start") from None
                time.sleep(0.1)
        warm_up(port)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def database(backend: str, pg_url: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="palaute-bench-") as folder:
            url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
            migrate.upgrade(url)
            yield url
        return
    name = f"palaute_bench_{secrets.token_hex(6)}"
    libpq = make_url(pg_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(libpq, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(pg_url).set(database=name).render_as_string(False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with psycopg.connect(libpq, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
