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

import multiprocessing
import os

workers = int(os.environ.get("WEB_CONCURRENCY", "0")) or multiprocessing.cpu_count()
worker_class = "sync"
