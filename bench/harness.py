"""What the webhook benchmarks share: results, gunicorn on a free loopback port, databases.

``bench/webhook_sms.py`` and ``bench/webhook_telegram.py`` run the app and a bare Flask
endpoint under the same gunicorn settings and compare them; only the payloads differ.
"""

from __future__ import annotations

import http.client
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by part (CpuMeter)

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

    def cpu_line(self) -> str:
        """CPU per request by part (where the machine's time went), or "" if unmeasured."""
        if not self.cpu or not self.requests:
            return ""
        parts = ", ".join(
            f"{name} {1000 * seconds / self.requests:.2f}" for name, seconds in self.cpu.items()
        )
        total = 1000 * sum(self.cpu.values()) / self.requests
        return f"  {self.name}: CPU ms per request: {parts} (total {total:.2f})"


def merge(name: str, parts: list[Result]) -> Result:
    total = Result(name)
    for part in parts:
        total.seconds += part.seconds
        total.latencies.extend(part.latencies)
        total.errors += part.errors
        total.duplicates += part.duplicates
        total.duplicate_mismatches += part.duplicate_mismatches
        total.samples.extend(part.samples)
        for name, seconds in part.cpu.items():
            total.cpu[name] = total.cpu.get(name, 0.0) + seconds
    return total


class CpuMeter:
    """CPU seconds used so far by the parts of a run (Linux ``/proc``): this process (the
    load generator), the gunicorn serving ``port`` (master and workers) and the
    PostgreSQL backends connected to the database of ``url`` (SQLite works inside the
    workers). With no ``/proc``, ``read`` gives {}."""

    def __init__(self, port: int, url: str) -> None:
        self._server = _servers.get(port)
        parsed = make_url(url)
        self._database = parsed.database if parsed.get_backend_name() == "postgresql" else None
        self._libpq = parsed.set(drivername="postgresql", database="postgres").render_as_string(
            False
        )

    def read(self) -> dict[str, float]:
        if self._server is None or not Path(f"/proc/{self._server}").exists():
            return {}
        seconds = {
            "load generator": time.process_time(),
            "gunicorn": sum(_cpu_of(pid) for pid in _tree(self._server)),
        }
        if self._database is not None:
            with psycopg.connect(self._libpq, autocommit=True, connect_timeout=5) as conn:
                pids = [row[0] for row in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self._database,)
                )]  # fmt: skip
            seconds["postgres"] = sum(_cpu_of(pid) for pid in pids)
        return seconds


def _tree(pid: int) -> list[int]:
    """``pid`` and its children (gunicorn's master and its workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(int(child) for child in children)]


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_servers: dict[int, int] = {}  # port -> pid of the gunicorn master serving it (CpuMeter)

# gunicorn.conf.py makes gunicorn the production web process (PALAUTE_ENV=production), which
# refuses the development secrets: the benches run it as deployed, with real random ones.
SECRETS = {
    "SECRET_KEY": secrets.token_urlsafe(48),
    "ADDRESS_KEY_SECRET": secrets.token_urlsafe(48),
}


@contextmanager
def gunicorn(
    app_spec: str, env: dict[str, str], warm_up: Callable[[int], None], threads: int = 1
) -> Iterator[int]:
    """Two gunicorn workers serving ``app_spec`` on a free port, warmed by ``warm_up(port)``."""
    port = free_port()
    process = subprocess.Popen(
        [GUNICORN, "-w", "2", "--threads", str(threads), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "--chdir", str(ROOT), app_spec],
        env={**os.environ, **SECRETS, **env},
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
        _servers[port] = process.pid
        yield port
    finally:
        _servers.pop(port, None)
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


# One request of a conversation: the body and the headers to post it with.
Message = tuple[bytes, dict[str, str]]
# What a reply is judged by: (index of the message in its conversation, HTTP status, body)
# -> None when right, else a short description of what was wrong.
Judge = Callable[[int, int, bytes], str | None]
DUPLICATE_SHARE = 0.05  # messages posted twice, as a provider redelivers after a timeout


def drive(
    name: str,
    port: int,
    path: str,
    conversations: list[list[Message]],
    clients: int,
    judge: Judge,
    *,
    per_attempt: Callable[[], dict[str, str]] | None = None,
    meter: CpuMeter | None = None,
) -> Result:
    """Post every conversation's messages in order from ``clients`` threads (one keep-alive
    connection each, reconnecting after errors), about ``DUPLICATE_SHARE`` of them twice.

    A redelivery must be answered byte for byte like the first delivery (``duplicates``;
    otherwise ``duplicate_mismatches``). ``per_attempt`` adds headers that change on every
    attempt (Twilio's idempotency token). With ``meter``, the CPU each part used during
    the run is in ``Result.cpu``.
    """
    result = Result(name)
    lock = threading.Lock()
    rng = random.Random(7)
    repeat = {id(m) for convo in conversations for m in convo if rng.random() < DUPLICATE_SHARE}
    queues = [conversations[i::clients] for i in range(clients)]

    def client(assigned: list[list[Message]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        part = Result(name)
        for convo in assigned:
            for index, message in enumerate(convo):
                body, headers = message
                first: bytes | None = None
                for attempt in range(2 if id(message) in repeat else 1):
                    sent = {**headers, **(per_attempt() if per_attempt else {})}
                    started = time.perf_counter()
                    try:
                        conn.request("POST", path, body, sent)
                        response = conn.getresponse()
                        payload, status = response.read(), response.status
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                        status, payload = 0, b""
                    part.latencies.append(time.perf_counter() - started)
                    wrong = judge(index, status, payload)
                    if wrong is not None:
                        part.errors += 1
                        if len(part.samples) < 3:
                            part.samples.append(wrong)
                    if attempt == 0:
                        first = payload
                    elif payload == first:
                        part.duplicates += 1
                    else:
                        part.duplicate_mismatches += 1
        conn.close()
        with lock:
            result.latencies.extend(part.latencies)
            result.errors += part.errors
            result.duplicates += part.duplicates
            result.duplicate_mismatches += part.duplicate_mismatches
            result.samples.extend(part.samples)

    threads = [threading.Thread(target=client, args=(q,)) for q in queues]
    before = meter.read() if meter is not None else {}
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    if meter is not None:
        after = meter.read()
        result.cpu = {name: after[name] - before[name] for name in after if name in before}
    return result
