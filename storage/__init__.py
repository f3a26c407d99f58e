"""Storage: SQLModel tables, repositories and Alembic migrations. Imports ``bot`` only.

Map of the package (every repository function takes the caller's session and does not
commit; ``storage.db.transaction(engine)`` is the unit of work):

- ``db``: ``make_engine(url)`` (SQLite WAL + BEGIN IMMEDIATE, or PostgreSQL/psycopg 3),
  ``transaction(engine)``, ``read_only(engine)``.
- ``errors``: ``StorageError`` with ``retryable``; database errors come out as these.
- ``migrate``: ``upgrade(url)``, ``downgrade(url, rev)``, ``current(url)``, ``head()``.
- ``tables``: the table models (private to storage); ``shapes``: what storage returns.
- ``contacts``: ``ContactStore`` - the ONLY code that reads or writes phone numbers and
  chat ids (lookups by keyed hash; opt-out/in with audit rows; unreachable; erasure).
- ``messages``: the message log (inbound rows, replies, transcripts).
- ``outbox``: ``claim_due`` / ``mark_sent`` / ``mark_failed`` / ``mark_skipped`` /
  ``update_status_by_provider_id`` for channel workers.
- ``runs``: flow runs, pinned flow versions and answers.
- ``visits``: visits with their first follow-ups; ``followups``: the follow-up schedule the
  clock claims; ``api_tokens``: hashed tokens for ``POST /api/visits``; ``funnel``: what
  became of each flow's follow-ups.

The use cases that tie these to the core live in ``service`` (the conversation service in
``service.conversations``).
"""
