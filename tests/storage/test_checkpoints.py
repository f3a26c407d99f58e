"""SQLite WAL checkpoints in a background thread (web app engines), not inside commits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import sqlalchemy as sa

from storage.db import make_engine, transaction

THREAD = "palaute-sqlite-checkpoint"


def _checkpointers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == THREAD}


def _write_pages(url: str, *, background: bool) -> tuple[int, int, int, int]:
    """Write ~100 pages; returns the database file size before and after (up to 3 s
    later), the WAL size and how many checkpoint threads the engine started."""
    path = Path(url.removeprefix("sqlite:///"))
    others = _checkpointers()
    engine = make_engine(url, background_checkpoints=background)
    try:
        with transaction(engine) as session:
            session.execute(sa.text("CREATE TABLE notes (body TEXT NOT NULL)"))
        before = path.stat().st_size
        with transaction(engine) as session:
            session.execute(
                sa.text("INSERT INTO notes (body) VALUES (:body)"),
                [{"body": "x" * 3000} for _ in range(120)],
            )
        deadline = time.monotonic() + 3
        while path.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.05)
        started = len(_checkpointers() - others)
        return before, path.stat().st_size, Path(f"{path}-wal").stat().st_size, started
    finally:
        engine.dispose()


def test_committed_pages_reach_the_database_file_without_a_big_commit(tmp_path: Path) -> None:
    before, after, _wal, started = _write_pages(
        f"sqlite:///{tmp_path / 'bg.sqlite3'}", background=True
    )
    assert started == 1
    assert after > before + 100 * 3000  # the background thread copied the WAL back


def test_without_background_checkpoints_small_writes_stay_in_the_wal(tmp_path: Path) -> None:
    before, after, wal, started = _write_pages(
        f"sqlite:///{tmp_path / 'fg.sqlite3'}", background=False
    )
    assert started == 0
    assert after == before  # SQLite's own auto-checkpoint waits for 1000 pages
    assert wal > 100 * 3000


def test_the_thread_stops_when_the_engine_is_disposed(tmp_path: Path) -> None:
    others = _checkpointers()
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}", background_checkpoints=True)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
    (mine,) = _checkpointers() - others
    engine.dispose()
    assert not mine.is_alive()
