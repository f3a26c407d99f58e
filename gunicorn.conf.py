"""Gunicorn settings for the Procfile's ``web: gunicorn "palaute.app:create_app()"``.

Gunicorn reads this file from the working directory; command-line flags override it.

A request is a few milliseconds of Python (signature check, survey engine, language
detection) around a handful of short SQL statements, so sync workers, one per core,
serve the most requests: measured with ``bench/webhook_sms.py``, ``--threads 4``
(gthread) was slower on SQLite and PostgreSQL alike (threads contend for the GIL).
Gunicorn's own default is a single worker. Set ``WEB_CONCURRENCY`` to choose the number
(each worker keeps up to ``pool_size`` database connections, see ``storage.db``).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from typing import Any

# Gunicorn through this file is the production web process (the Procfile's `web`): the
# app refuses default secrets unless PALAUTE_ENV says otherwise (see README, Deploying).
os.environ.setdefault("PALAUTE_ENV", "production")

workers = int(os.environ.get("WEB_CONCURRENCY", "0")) or multiprocessing.cpu_count()
worker_class = "sync"


def post_worker_init(worker: Any) -> None:
    """The app is loaded: take what it allocated (~150,000 long-lived objects: Flask,
    SQLAlchemy, flows) out of the garbage collector's full passes. Without it, every few
    hundred requests a full collection walks them all (~60 ms, a latency spike);
    measured ~55 -> ~14 µs of collection per SMS request."""
    gc.freeze()
