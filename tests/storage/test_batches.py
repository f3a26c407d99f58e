"""The set-based storage functions the clock and visit intake use (one statement for many).

Each does what its one-at-a-time counterpart does, for many rows, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Engine

from bot import engine as flow_engine
from bot.messages import Outgoing, OutgoingKind
from storage import followups, messages, runs
from storage import visits as visit_store
from storage.contacts import ContactStore, find_many, find_or_create_many, lock_many
from storage.db import transaction
from storage.messages import NewOutgoing, OutgoingBatch
from storage.shapes import MessageStatus
from storage.visits import NewVisit
from tests.storage.support import NOW, SECRET, catalogue_in

contacts = ContactStore(SECRET)


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def test_find_or_create_many_creates_each_person_once(engine: Engine) -> None:
    with transaction(engine) as session:
        known = contacts.find_or_create(session, "sms", "+358401111111", NOW)
    pairs = [
        ("sms", "+358401111111"),  # known already
        ("sms", "+358402222222"),
        ("sms", " +358402222222 "),  # the same number written with blanks: the same person
        ("sms", "+358402222222"),  # twice in the list
        ("telegram", "+358402222222"),  # another channel: another contact
    ]
    with transaction(engine) as session:
        found = find_or_create_many(contacts, session, pairs, NOW)
    assert set(found) == set(pairs)
    assert found[("sms", "+358401111111")].id == known.id
    assert found[("sms", "+358402222222")].id == found[("sms", " +358402222222 ")].id
    assert found[("telegram", "+358402222222")].id != found[("sms", "+358402222222")].id
    assert _count(engine, "contacts") == 3
    with transaction(engine) as session:  # again: everything found, nothing created
        again = find_or_create_many(contacts, session, pairs, NOW)
        by_one = contacts.find(session, "sms", "+358402222222")
    assert {pair: c.id for pair, c in again.items()} == {pair: c.id for pair, c in found.items()}
    assert by_one is not None and by_one.id == found[("sms", "+358402222222")].id
    assert _count(engine, "contacts") == 3


def test_find_many_finds_only_existing_contacts(engine: Engine) -> None:
    with transaction(engine) as session:
        chat = contacts.find_or_create(session, "telegram", "1234", NOW)
        found = find_many(contacts, session, [("telegram", "1234"), ("telegram", "5678")])
    assert {pair: c.id for pair, c in found.items()} == {("telegram", "1234"): chat.id}
    assert _count(engine, "contacts") == 1


def test_lock_many_returns_the_contacts_with_their_addresses(engine: Engine) -> None:
    with transaction(engine) as session:
        a = contacts.find_or_create(session, "sms", "+358401111111", NOW)
        b = contacts.find_or_create(session, "sms", "+358402222222", NOW)
        contacts.record_opt(session, b.id, action="out", via="keyword", keyword="STOP", now=NOW)
    with transaction(engine) as session:
        locked = lock_many(session, [b.id, a.id, 999_999])
    assert set(locked) == {a.id, b.id}  # the unknown id is missing
    assert locked[a.id][1] == "+358401111111" and not locked[a.id][0].opted_out
    assert locked[b.id][1] == "+358402222222" and locked[b.id][0].opted_out


def test_runs_inserted_together_get_their_ids_in_order(engine: Engine, tmp_path: Path) -> None:
    flow = catalogue_in(tmp_path / "flows").get("survey")
    assert flow is not None
    state = flow_engine.start(flow, language="fi", now=NOW).state
    with transaction(engine) as session:
        people = [contacts.find_or_create(session, "sms", f"+35840{i:07d}", NOW) for i in range(4)]
        runs.remember_flow_version(session, flow.id, flow.version, "source", NOW)
        ids = runs.insert_runs(session, [(p, state) for p in reversed(people)], NOW)
        active = runs.active_runs(session, [p.id for p in people], lock=True)
        one = runs.active_run(session, people[0].id)
    assert len(set(ids)) == 4
    assert {contact_id: run.id for contact_id, run in active.items()} == {
        p.id: run_id for p, run_id in zip(reversed(people), ids, strict=True)
    }
    assert one is not None and one.id == ids[-1] and one.state == state
    later = state.with_(expires_at=NOW + timedelta(days=9))
    with transaction(engine) as session:
        runs.update_runs(session, [(ids[0], later)], NOW)
        updated = runs.active_runs(session, [people[-1].id])
    assert updated[people[-1].id].state.expires_at == NOW + timedelta(days=9)


def test_outgoing_of_many_contacts_keep_each_contacts_order(engine: Engine) -> None:
    def items(*texts: str) -> list[NewOutgoing]:
        return [
            NewOutgoing(Outgoing(t, "fi", OutgoingKind.PROMPT), MessageStatus.QUEUED, NOW)
            for t in texts
        ]

    with transaction(engine) as session:
        a = contacts.find_or_create(session, "sms", "+358401111111", NOW)
        b = contacts.find_or_create(session, "sms", "+358402222222", NOW)
        messages.insert_outgoing_many(
            session,
            [
                OutgoingBatch(a.id, "sms", None, items("a1", "a2")),
                OutgoingBatch(b.id, "sms", None, items("b1")),
                OutgoingBatch(a.id, "sms", None, items("a3")),
            ],
            now=NOW,
        )
        log_a = messages.log_of(session, a.id)
        log_b = messages.log_of(session, b.id)
    assert [(m.text, m.status) for m in log_a] == [
        ("a1", MessageStatus.QUEUED),
        ("a2", MessageStatus.QUEUED),
        ("a3", MessageStatus.QUEUED),
    ]
    assert [m.text for m in log_b] == ["b1"]
    with engine.connect() as conn:
        keys = conn.exec_driver_sql("SELECT idempotency_key FROM messages").scalars().all()
    assert len(set(keys)) == 4 and all(keys)


def _visit(external_id: str, contact_id: int | None = None) -> NewVisit:
    return NewVisit(
        organisation="Org",
        source="his",
        external_id=external_id,
        service_point=None,
        visit_at=NOW,
        timezone="Europe/Helsinki",
        contact_id=contact_id,
        channel="sms" if contact_id is not None else None,
        language=None,
        flow_id="survey",
        due_at=NOW,
    )


def _visits(engine: Engine, count: int) -> list[followups.ClaimedFollowup]:
    with transaction(engine) as session:
        visit_store.add_visits(session, [_visit(f"V-{i}") for i in range(count)], NOW)
    with transaction(engine) as session:
        return followups.claim_due(session, NOW, count, "clock-a", timedelta(minutes=2))


def _statuses(engine: Engine) -> dict[str, tuple[str, str | None, object]]:
    f = followups._followups
    v = followups._visits
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(v.c.external_id, f.c.status, f.c.skip_reason, f.c.due_at)
            .join(v, v.c.id == f.c.visit_id)
            .where(f.c.kind == followups.FIRST)
        ).all()
    return {r.external_id: (r.status, r.skip_reason, r.due_at) for r in rows}


def test_finishing_many_claims_touches_only_claims_still_held(engine: Engine) -> None:
    claims = _visits(engine, 4)
    stale = [
        followups.ClaimedFollowup(**{**c.__dict__, "attempts": c.attempts + 1})  # taken over
        for c in claims
    ]
    later = NOW + timedelta(hours=3)
    with transaction(engine) as session:
        followups.mark_skipped_many(session, [(claims[0], "opted_out"), (stale[1], "capped")], NOW)
        followups.reschedule_many(session, [(claims[2], later), (stale[3], later)], NOW)
    statuses = _statuses(engine)
    assert statuses["V-0"][:2] == ("skipped", "opted_out")
    assert statuses["V-1"][:2] == ("claimed", None)  # not ours any more: left alone
    assert statuses["V-2"] == ("scheduled", None, later)
    assert statuses["V-3"][:2] == ("claimed", None)


def test_reminders_scheduled_together_once_each(engine: Engine) -> None:
    claims = _visits(engine, 2)
    reminders = [(c.visit_id, None, NOW + timedelta(days=1)) for c in claims]
    with transaction(engine) as session:
        followups.schedule_reminders(session, reminders, NOW)
        followups.schedule_reminders(session, reminders[:1], NOW)  # again: nothing new
    with engine.connect() as conn:
        kinds = conn.exec_driver_sql("SELECT kind, status FROM followups ORDER BY id").all()
    assert [tuple(k) for k in kinds] == [
        ("first", "claimed"),
        ("first", "claimed"),
        ("reminder", "scheduled"),
        ("reminder", "scheduled"),
    ]


def test_last_surveyed_many_counts_sent_first_followups_only(engine: Engine) -> None:
    with transaction(engine) as session:
        person = contacts.find_or_create(session, "sms", "+358401111111", NOW)
        other = contacts.find_or_create(session, "sms", "+358402222222", NOW)
        visits = [_visit("L-0", person.id), _visit("L-1", person.id), _visit("L-x", other.id)]
        visit_store.add_visits(session, visits, NOW)
    with transaction(engine) as session:
        claims = followups.claim_due(session, NOW, 10, "clock-a", timedelta(minutes=2))
        followups.mark_sent_many(session, [(claims[0], None)], NOW + timedelta(minutes=5))
        followups.mark_skipped_many(session, [(claims[2], "capped")], NOW)
    with transaction(engine) as session:
        last = followups.last_surveyed_many(
            session, {(person.id, "Org"), (other.id, "Org"), (person.id, "Elsewhere")}
        )
    assert last == {(person.id, "Org"): NOW + timedelta(minutes=5)}
