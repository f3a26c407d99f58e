"""Contacts: keyed lookups, one module for addresses, opt-outs and erasure."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from storage.contacts import ContactStore
from storage.db import transaction
from tests.storage.support import NOW, SECRET

REPO = Path(__file__).resolve().parents[2]
store = ContactStore(SECRET)


def test_the_same_address_finds_the_same_contact(engine: Engine) -> None:
    with transaction(engine) as session:
        first = store.find_or_create(session, "sms", "+358401234567", NOW)
        again = store.find_or_create(session, "sms", " +358401234567 ", NOW)
        other_channel = store.find_or_create(session, "telegram", "+358401234567", NOW)
        assert store.find(session, "sms", "+358401234567") == first
        assert store.find(session, "sms", "+358409999999") is None
        assert store.address_of(session, first.id) == "+358401234567"
        assert store.addresses_of(session, [first.id, other_channel.id]) == {
            first.id: "+358401234567",
            other_channel.id: "+358401234567",
        }
    assert again.id == first.id
    assert other_channel.id != first.id


def test_lookups_use_a_keyed_hash_not_the_number(engine: Engine) -> None:
    with transaction(engine) as session:
        store.find_or_create(session, "sms", "+358401234567", NOW)
    with engine.connect() as connection:
        key = connection.execute(sa.text("SELECT address_key FROM contacts")).scalar_one()
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert key != ContactStore("another-secret").address_key("sms", "+358401234567")
    with transaction(engine) as session:  # another secret cannot find the contact
        assert ContactStore("another-secret").find(session, "sms", "+358401234567") is None


def test_only_storage_contacts_reads_or_writes_addresses() -> None:
    """Encryption at rest and erasure must only have to change storage/contacts.py.

    Other modules may join contacts by id, channel or address_key, but never touch the
    ``address`` column or load whole contact rows (which include it).
    """
    allowed = {REPO / "storage" / "contacts.py", REPO / "storage" / "tables.py"}
    touches = re.compile(
        r"\b\w*contacts?\w*\.(c\.)?address\b(?!_)"  # _contacts.c.address, ContactRow.address
        r"|\bContactRow\.address\b(?!_)"
        r"|select\(\s*(ContactRow|_?contacts\w*)\s*[,)]"  # whole rows
        r"|\bcontacts\s*\([^)]*\baddress\b(?!_)"  # INSERT INTO contacts (..., address
        r"|\bSELECT\b[^;]*?\baddress\b(?!_)[^;]*?\bFROM\s+contacts\b",
        re.I | re.S,
    )
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("storage", "palaute", "channels", "bench")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path not in allowed
        and "migrations" not in path.parts
        and touches.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    assert touches.search("sa.select(_contacts.c.address)")  # the guard itself works
    assert touches.search("SELECT id, address FROM contacts")
    assert not touches.search("_contacts.c.address_key == key")


def test_inside_storage_contacts_one_function_writes_and_one_reads_the_address() -> None:
    """Encrypting addresses at rest is then a change to ``_stored_address`` (what is
    written) and ``_address_from`` (what is read), whatever path reads or writes."""
    source = (REPO / "storage" / "contacts.py").read_text(encoding="utf-8")
    reads = re.findall(r"(\w*\(?)row\.address\b(?!_)", source)
    assert reads and set(reads) == {"_address_from("}
    writes = re.findall(r'"address":\s*(\w+)\(', source)
    assert writes == ["_stored_address"]
    # Every statement that selects the column reads it back as ``row.address``.
    assert source.count("_contacts.c.address)") == len(reads)


def test_opt_out_and_back_in_is_audited(engine: Engine) -> None:
    with transaction(engine) as session:
        contact = store.find_or_create(session, "sms", "+358401234567", NOW)
        store.record_opt(session, contact.id, action="out", via="keyword", keyword="STOP", now=NOW)
        assert store.get(session, contact.id).opted_out is True  # type: ignore[union-attr]
        later = NOW + timedelta(days=1)
        store.record_opt(
            session, contact.id, action="in", via="keyword", keyword="START", now=later
        )
        back = store.get(session, contact.id)
    assert back is not None
    assert (back.opted_out, back.opted_out_at) == (False, None)
    with engine.connect() as connection:
        events = connection.execute(sa.text("SELECT action, keyword FROM opt_events ORDER BY id"))
        assert [(e.action, e.keyword) for e in events] == [("out", "STOP"), ("in", "START")]
    with pytest.raises(ValueError, match="'out' or 'in'"), transaction(engine) as session:
        store.record_opt(session, contact.id, action="maybe", via="x", keyword="", now=NOW)


def test_unreachable_contacts_are_marked_and_cleared(engine: Engine) -> None:
    with transaction(engine) as session:
        contact = store.find_or_create(session, "telegram", "123456789", NOW)
        store.mark_unreachable(session, contact.id, "blocked", NOW)
        marked = store.get(session, contact.id)
        store.clear_unreachable(session, contact.id, NOW)
        cleared = store.get(session, contact.id)
    assert marked is not None and marked.unreachable_reason == "blocked"
    assert cleared is not None and cleared.unreachable_reason is None


def test_erasure_removes_the_contact_and_everything_about_them(engine: Engine) -> None:
    with transaction(engine) as session:
        contact = store.find_or_create(session, "sms", "+358401234567", NOW)
        store.record_opt(session, contact.id, action="out", via="keyword", keyword="STOP", now=NOW)
    with transaction(engine) as session:
        assert store.erase(session, contact.id) is True
    with engine.connect() as connection:
        for table in ("contacts", "opt_events"):
            count = connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            assert count == 0, table


def test_empty_addresses_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        store.address_key("sms", "  ")
    with pytest.raises(ValueError, match="address_key_secret"):
        ContactStore("")
