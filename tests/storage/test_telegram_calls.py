"""storage.telegram: the telegram_calls table matches migration 0003, and claims behave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from storage import telegram as calls
from storage.db import make_engine, transaction
from tests.storage.support import schema_diffs

T0 = datetime(2026, 5, 14, 9, 12, tzinfo=UTC)


def test_model_matches_migration(db_url: str) -> None:
    diffs = schema_diffs(db_url, calls.METADATA)

    def mentions_table(diff: Any) -> bool:
        return "telegram_calls" in repr(diff)

    assert [d for d in diffs if mentions_table(d)] == []


def test_claim_retry_and_drop(db_url: str) -> None:
    engine = make_engine(db_url)
    lease = timedelta(minutes=2)
    try:
        with transaction(engine) as session:
            calls.enqueue_calls(
                session,
                [("answerCallbackQuery", {"callback_query_id": "1"}),
                 ("editMessageText", {"chat_id": 5, "message_id": 9, "text": "Q\n\n✅ 4"})],
                "5",
                T0,
            )  # fmt: skip
        with transaction(engine) as session:
            claimed = calls.claim_calls(session, T0, 10, lease)
        assert [c.method for c in claimed] == ["answerCallbackQuery", "editMessageText"]
        assert claimed[1].params["text"] == "Q\n\n✅ 4" and claimed[1].chat == "5"
        assert all(c.attempts == 1 for c in claimed)
        with transaction(engine) as session:  # leased: another worker gets nothing
            assert calls.claim_calls(session, T0 + timedelta(seconds=1), 10, lease) == []
            calls.drop_call(session, claimed[0].id)
            calls.retry_call(session, claimed[1].id, T0 + timedelta(seconds=30))
        with transaction(engine) as session:
            assert calls.claim_calls(session, T0 + timedelta(seconds=29), 10, lease) == []
            again = calls.claim_calls(session, T0 + timedelta(seconds=30), 10, lease)
        assert [(c.method, c.attempts) for c in again] == [("editMessageText", 2)]
        with transaction(engine) as session:  # a lease that ran out can be claimed again
            later = calls.claim_calls(session, T0 + timedelta(minutes=5), 10, lease)
            assert [c.id for c in later] == [claimed[1].id]
            assert len(calls.pending_calls(session)) == 1
    finally:
        engine.dispose()


def test_enqueue_keeps_the_order_of_any_number_of_calls(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with transaction(engine) as session:
            calls.enqueue_calls(session, [], "5", T0)
            calls.enqueue_calls(session, [("answerCallbackQuery", {"callback_query_id": "1"})],
                                "5", T0)  # fmt: skip
            calls.enqueue_calls(
                session,
                [("editMessageText", {"chat_id": 6, "message_id": i, "text": f"Q{i} ✅"})
                 for i in range(3)],
                "6",
                T0 + timedelta(seconds=1),
            )  # fmt: skip
        with transaction(engine) as session:
            pending = calls.pending_calls(session)
        assert [(c.method, c.chat) for c in pending] == [
            ("answerCallbackQuery", "5"),
            ("editMessageText", "6"),
            ("editMessageText", "6"),
            ("editMessageText", "6"),
        ]
        assert [c.params.get("message_id") for c in pending[1:]] == [0, 1, 2]
        assert pending[3].params["text"] == "Q2 ✅"
        assert pending[0].created_at == T0 and pending[1].created_at == T0 + timedelta(seconds=1)
        assert all(c.attempts == 0 for c in pending)
    finally:
        engine.dispose()
