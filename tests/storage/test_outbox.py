"""The outbox: claims, leases, retries and provider status callbacks."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from bot.messages import Choice, Outgoing, OutgoingKind
from storage import messages, outbox
from storage.contacts import ContactStore
from storage.db import make_engine, transaction
from storage.messages import NewOutgoing
from storage.outbox import StatusUpdate
from storage.shapes import MessageStatus
from tests.storage.support import NOW, SECRET

LEASE = timedelta(minutes=2)
contacts = ContactStore(SECRET)


def queue(engine: Engine, texts: list[str], *, address: str = "+358401234567", at=NOW) -> None:  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        contact = contacts.find_or_create(session, "sms", address, NOW)
        messages.insert_outgoing(
            session,
            contact_id=contact.id,
            channel="sms",
            run_id=None,
            reply_to=None,
            items=[
                NewOutgoing(
                    Outgoing(text, "fi", OutgoingKind.PROMPT, "s1", (Choice("1", "Yksi"),)),
                    MessageStatus.QUEUED,
                    next_attempt_at=at,
                )
                for text in texts
            ],
            now=NOW,
        )


def claim(engine: Engine, now=NOW, limit: int = 10, worker: str = "w1"):  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return outbox.claim_due(session, now, limit, worker, LEASE, contacts=contacts)


def status_of(engine: Engine, message_id: int) -> tuple[str, int, str | None]:
    with engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT status, attempts, error_code FROM messages WHERE id = :id"),
            {"id": message_id},
        ).one()
    return row.status, row.attempts, row.error_code


def test_claim_hands_out_due_messages_oldest_first_with_their_address(engine: Engine) -> None:
    queue(engine, ["first", "second"])
    queue(engine, ["later"], at=NOW + timedelta(minutes=1), address="+358405555555")

    (first,) = claim(engine)  # one message per contact at a time, the oldest first

    assert (first.text, first.address, first.attempts, first.reclaimed) == (
        "first",
        "+358401234567",
        1,
        False,
    )
    assert first.payload["choices"] == [{"value": "1", "label": "Yksi"}]
    assert claim(engine) == []  # claimed: nobody else gets it while the lease runs
    with transaction(engine) as session:
        outbox.mark_sent(session, first.id, "SM-first", now=NOW)
    (second,) = claim(engine)
    assert second.text == "second"
    assert second.idempotency_key != first.idempotency_key
    assert [m.text for m in claim(engine, now=NOW + timedelta(minutes=1))] == ["later"]


def test_sent_failed_and_retried(engine: Engine) -> None:
    for text, address in (("a", "+358401"), ("b", "+358402"), ("c", "+358403")):
        queue(engine, [text], address=address)
    a, b, c = claim(engine)
    with transaction(engine) as session:
        outbox.mark_sent(session, a.id, "SM-a", now=NOW)
        outbox.mark_failed(session, b.id, "30001", NOW + timedelta(minutes=5), now=NOW)
        outbox.mark_failed(session, c.id, "21211", None, now=NOW)

    assert status_of(engine, a.id) == ("sent", 1, None)
    assert status_of(engine, b.id) == ("queued", 1, "30001")
    assert status_of(engine, c.id) == ("failed", 1, "21211")
    assert claim(engine, now=NOW + timedelta(minutes=4)) == []
    (again,) = claim(engine, now=NOW + timedelta(minutes=5))
    assert (again.id, again.attempts, again.reclaimed) == (b.id, 2, False)


def test_a_lapsed_sending_claim_is_handed_out_again_marked_reclaimed(engine: Engine) -> None:
    queue(engine, ["crashed"])
    (first,) = claim(engine, worker="dies")  # the worker crashes while sending

    assert claim(engine, now=NOW + LEASE - timedelta(seconds=1)) == []
    (second,) = claim(engine, now=NOW + LEASE + timedelta(seconds=1), worker="w2")
    assert second.id == first.id
    assert second.reclaimed is True
    assert second.attempts == 2
    assert second.idempotency_key == first.idempotency_key  # pass it to the provider


def test_status_callbacks_never_move_a_message_backwards(engine: Engine) -> None:
    queue(engine, ["x"])
    (message,) = claim(engine)
    with transaction(engine) as session:
        outbox.mark_sent(session, message.id, "SM1", now=NOW)

    def update(status: MessageStatus, error: str | None = None) -> StatusUpdate:
        with transaction(engine) as session:
            return outbox.update_status_by_provider_id(
                session, "sms", "SM1", status, error, now=NOW
            )

    assert update(MessageStatus.DELIVERED) is StatusUpdate.UPDATED
    assert update(MessageStatus.SENT) is StatusUpdate.STALE  # arrived late
    assert update(MessageStatus.DELIVERED) is StatusUpdate.STALE  # twice
    assert status_of(engine, message.id)[0] == "delivered"
    with transaction(engine) as session:
        unknown = outbox.update_status_by_provider_id(
            session, "sms", "SM-nope", MessageStatus.DELIVERED, None, now=NOW
        )
    assert unknown is StatusUpdate.UNKNOWN


def test_undelivered_keeps_the_error_code(engine: Engine) -> None:
    queue(engine, ["x"])
    (message,) = claim(engine)
    with transaction(engine) as session:
        outbox.mark_sent(session, message.id, "SM2", now=NOW)
        result = outbox.update_status_by_provider_id(
            session, "sms", "SM2", MessageStatus.UNDELIVERED, "30003", now=NOW
        )
    assert result is StatusUpdate.UPDATED
    assert status_of(engine, message.id) == ("undelivered", 1, "30003")


def test_claims_by_channel(engine: Engine) -> None:
    queue(engine, ["sms"])
    with transaction(engine) as session:
        assert (
            outbox.claim_due(session, NOW, 10, "w", LEASE, contacts=contacts, channels={"telegram"})
            == []
        )
        assert outbox.pending_count(session, channel="sms") == 1


@pytest.mark.parametrize("claimers", [4])
def test_concurrent_claimers_never_get_the_same_message(db_url: str, claimers: int) -> None:
    engines = [make_engine(db_url) for _ in range(claimers)]
    try:
        for batch in range(10):
            queue(engines[0], [f"m{batch}-{i}" for i in range(20)], address=f"+35840{batch:07d}")
        got: list[list[int]] = [[] for _ in range(claimers)]
        claim_order: list[tuple[int, int]] = []  # (contact, message) as handed out
        order_lock = threading.Lock()
        errors: list[BaseException] = []
        barrier = threading.Barrier(claimers)

        def work(index: int) -> None:
            try:
                barrier.wait(timeout=10)
                while True:
                    batch = claim(engines[index], limit=7, worker=f"w{index}")
                    if not batch:
                        return
                    got[index].extend(m.id for m in batch)
                    with order_lock:
                        claim_order.extend((m.contact_id, m.id) for m in batch)
                    with transaction(engines[index]) as session:
                        for m in batch:
                            outbox.mark_sent(session, m.id, f"P{m.id}", now=NOW)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(claimers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert errors == []
        everything = [message_id for ids in got for message_id in ids]
        assert len(everything) == 200
        assert len(set(everything)) == 200  # nobody got a message twice
        for contact in {c for c, _ in claim_order}:  # each contact's in order
            ids = [m for c, m in claim_order if c == contact]
            assert ids == sorted(ids)
        with engines[0].connect() as connection:
            statuses = connection.execute(
                sa.text("SELECT status, count(*) AS n FROM messages GROUP BY status")
            ).all()
        assert [(s.status, s.n) for s in statuses] == [("sent", 200)]
    finally:
        for engine in engines:
            engine.dispose()


def test_a_contacts_messages_leave_in_order_even_after_a_failure(engine: Engine) -> None:
    queue(engine, ["question 1", "question 2"])
    queue(engine, ["someone else"], address="+358409999999")
    first, other = claim(engine)
    assert (first.text, other.text) == ("question 1", "someone else")
    with transaction(engine) as session:  # question 1 fails and is retried later
        outbox.mark_failed(session, first.id, "30008", NOW + timedelta(minutes=5), now=NOW)
        outbox.mark_sent(session, other.id, "SM-o", now=NOW)

    # question 2 is due, but must not overtake question 1
    assert claim(engine, now=NOW + timedelta(minutes=1)) == []
    (retried,) = claim(engine, now=NOW + timedelta(minutes=5))
    assert retried.text == "question 1"
    with transaction(engine) as session:
        outbox.mark_failed(session, retried.id, "30008", None, now=NOW)  # gave up on it
    assert [m.text for m in claim(engine, now=NOW + timedelta(minutes=5))] == ["question 2"]


def test_a_message_waits_while_an_earlier_one_is_being_sent(engine: Engine) -> None:
    queue(engine, ["question 1"])
    (first,) = claim(engine, worker="w1")
    queue(engine, ["question 2"])
    assert claim(engine, worker="w2") == []  # w1 may still be sending question 1
    with transaction(engine) as session:
        outbox.mark_sent(session, first.id, "SM-1", now=NOW)
    assert [m.text for m in claim(engine, worker="w2")] == ["question 2"]


def test_renewing_claims_keeps_only_the_ones_still_held(engine: Engine) -> None:
    queue(engine, ["a"], address="+358401230001")
    queue(engine, ["b"], address="+358401230002")
    first, second = claim(engine, worker="slow")
    # the slow worker's lease runs out; another worker takes over the second message
    (taken,) = claim(engine, now=NOW + LEASE + timedelta(seconds=1), limit=1, worker="w2")
    assert taken.id == first.id
    later = NOW + LEASE + timedelta(seconds=2)
    with transaction(engine) as session:
        held = outbox.renew_claims(session, [first.id, second.id], "slow", later + LEASE, now=later)
    assert held == {second.id}  # the taken-over message is no longer ours to send
    assert claim(engine, now=later + LEASE - timedelta(seconds=1), worker="w3") == []


def test_sent_in_bulk_never_overwrites_a_final_status(engine: Engine) -> None:
    queue(engine, ["a"], address="+358401230003")
    queue(engine, ["b"], address="+358401230004")
    a, b = claim(engine)
    with transaction(engine) as session:
        outbox.mark_skipped(session, b.id, "opted_out", now=NOW)
        outbox.mark_sent_many(session, [(a.id, "SM-a"), (b.id, "SM-b")], now=NOW)
    assert status_of(engine, a.id) == ("sent", 1, None)
    assert status_of(engine, b.id) == ("skipped", 1, "opted_out")
