"""The ONLY module that reads or writes contact addresses (phone numbers, chat ids).

Lookups go through ``address_key``: a keyed hash (HMAC-SHA256) of channel and address,
so the plain ``address`` column is needed only to send. Encrypting it at rest, retention
and erasure therefore change this module alone: nothing else selects ``contacts.address``
(``tests/storage/test_contacts.py`` checks that no other module mentions the column).
Within it, every value written to the column comes from ``_stored_address`` and every
value read from it goes through ``_address_from``: encryption is those two functions.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from bot.messages import TEST_CHANNELS
from storage.shapes import StoredContact
from storage.sql import Prepared, connection_of, execute, one_of
from storage.tables import ContactRow, OptEventRow, table_of

_contacts = table_of(ContactRow)
_opt_events = table_of(OptEventRow)

# The columns that describe a contact without revealing its address.
_PUBLIC_COLUMNS = (
    _contacts.c.id,
    _contacts.c.channel,
    _contacts.c.language,
    _contacts.c.opted_out,
    _contacts.c.opted_out_at,
    _contacts.c.unreachable_reason,
    _contacts.c.unreachable_at,
    _contacts.c.created_at,
    _contacts.c.is_test,
)


# Prebuilt statements for the per-message path (values are bound, never rebuilt).
_BY_KEY = sa.select(*_PUBLIC_COLUMNS).where(
    _contacts.c.channel == sa.bindparam("b_channel"),
    _contacts.c.address_key == sa.bindparam("b_key"),
)
_BY_KEY_LOCKED = _BY_KEY.with_for_update(of=_contacts)
_BY_ID = sa.select(*_PUBLIC_COLUMNS).where(_contacts.c.id == sa.bindparam("b_id"))
_UPDATE_BY_ID = sa.update(_contacts).where(_contacts.c.id == sa.bindparam("b_id"))
_FAST_BY_KEY = Prepared(_BY_KEY)
_FAST_BY_KEY_LOCKED = Prepared(_BY_KEY_LOCKED)
_FAST_UPDATE_LANGUAGE = Prepared(_UPDATE_BY_ID, ("language", "updated_at"))
_NEW_COLUMNS = (
    "channel",
    "address",
    "address_key",
    "opted_out",
    "is_test",
    "created_at",
    "updated_at",
)
# A new contact in one statement: nothing comes back when a racing transaction made it first.
_FAST_CREATE = {
    name: Prepared(
        insert(_contacts)
        .on_conflict_do_nothing(index_elements=["channel", "address_key"])
        .returning(*_PUBLIC_COLUMNS),
        _NEW_COLUMNS,
    )
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_FAST_CLEAR_UNREACHABLE = Prepared(
    sa.update(_contacts)
    .where(_contacts.c.id == sa.bindparam("b_id"), _contacts.c.unreachable_at.is_not(None))
    .values(unreachable_reason=None, unreachable_at=None),
    ("updated_at",),
)


def normalise_address(address: str) -> str:
    """Channels hand in E.164 numbers and chat ids; only surrounding blanks are dropped."""
    cleaned = address.strip()
    if not cleaned:
        raise ValueError("a contact address must not be empty")
    return cleaned


class ContactStore:
    """Contacts by channel and address, keyed with ``address_key_secret``.

    The secret must stay the same for the lifetime of the database (changing it makes
    every existing contact unfindable); set it with ADDRESS_KEY_SECRET in production.
    """

    def __init__(self, address_key_secret: str) -> None:
        if not address_key_secret:
            raise ValueError("address_key_secret must not be empty")
        self._secret = address_key_secret.encode("utf-8")

    def address_key(self, channel: str, address: str) -> str:
        message = f"{channel}\x1f{normalise_address(address)}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    # --- lookups -----------------------------------------------------------------------

    def find(self, session: Session, channel: str, address: str) -> StoredContact | None:
        key = self.address_key(channel, address)
        return self._select(session, channel, key, lock=False)

    def find_or_create(
        self,
        session: Session,
        channel: str,
        address: str,
        now: datetime,
        *,
        lock: bool = True,
    ) -> StoredContact:
        """The contact for (channel, address), created if new.

        With ``lock`` the row is locked until the transaction ends (PostgreSQL
        ``SELECT ... FOR UPDATE``; on SQLite the ``BEGIN IMMEDIATE`` write lock already
        serialises), so two messages from one person are handled one after the other.
        """
        key = self.address_key(channel, address)
        found = self._select(session, channel, key, lock=lock)
        if found is not None:
            return found
        # A row this transaction inserts stays invisible (and so "locked") until commit;
        # a racing insert of the same key waits for us, then inserts nothing.
        row = (
            _FAST_CREATE[connection_of(session).dialect.name]
            .run(session, _new_row(channel, address, key, now))
            .first()
        )
        if row is not None:
            return _shape(row)
        created = self._select(session, channel, key, lock=lock)
        if created is None:  # pragma: no cover - the insert above or a racing one made it
            raise RuntimeError("contact vanished right after it was created")
        return created

    def get(self, session: Session, contact_id: int) -> StoredContact | None:
        row = execute(session, _BY_ID, {"b_id": contact_id}).first()
        return _shape(row) if row is not None else None

    def address_of(self, session: Session, contact_id: int) -> str:
        address = addresses_many(session, [contact_id]).get(contact_id)
        if address is None:
            raise LookupError(f"no contact with id {contact_id}")
        return address

    def addresses_of(self, session: Session, contact_ids: Iterable[int]) -> dict[int, str]:
        return addresses_many(session, contact_ids)

    # --- changes -----------------------------------------------------------------------

    def update_language(
        self, session: Session, contact_id: int, language: str | None, now: datetime
    ) -> None:
        _FAST_UPDATE_LANGUAGE.run(
            session, {"b_id": contact_id, "language": language, "updated_at": now}
        )

    def record_opt(
        self,
        session: Session,
        contact_id: int,
        *,
        action: str,
        via: str,
        keyword: str,
        now: datetime,
    ) -> None:
        """Opt a contact out (``action="out"``) or back in (``"in"``), with its audit row."""
        if action not in ("out", "in"):
            raise ValueError(f"opt action must be 'out' or 'in', not {action!r}")
        opted_out = action == "out"
        session.execute(
            sa.update(_contacts)
            .where(_contacts.c.id == contact_id)
            .values(
                opted_out=opted_out,
                opted_out_at=now if opted_out else None,
                updated_at=now,
            )
        )
        session.execute(
            sa.insert(_opt_events).values(
                contact_id=contact_id, action=action, via=via, keyword=keyword[:255], at=now
            )
        )

    def mark_unreachable(
        self, session: Session, contact_id: int, reason: str, now: datetime
    ) -> None:
        """The provider says we cannot reach this contact (blocked bot, invalid number)."""
        session.execute(
            sa.update(_contacts)
            .where(_contacts.c.id == contact_id)
            .values(unreachable_reason=reason[:64], unreachable_at=now, updated_at=now)
        )

    def clear_unreachable(self, session: Session, contact_id: int, now: datetime) -> None:
        """The contact wrote to us again: they can be reached."""
        _FAST_CLEAR_UNREACHABLE.run(session, {"b_id": contact_id, "updated_at": now})

    def erase(self, session: Session, contact_id: int) -> bool:
        """Delete a contact with its messages, runs, answers and opt events (GDPR erasure).

        Rows elsewhere that point at the contact keep existing with the link cleared.
        """
        result = session.execute(sa.delete(_contacts).where(_contacts.c.id == contact_id))
        return bool(getattr(result, "rowcount", 0))

    # --- internals ---------------------------------------------------------------------

    def _select(
        self, session: Session, channel: str, key: str, *, lock: bool
    ) -> StoredContact | None:
        statement = _FAST_BY_KEY_LOCKED if lock else _FAST_BY_KEY
        row = statement.run(session, {"b_channel": channel, "b_key": key}).first()
        return _shape(row) if row is not None else None


def _new_row(channel: str, address: str, key: str, now: datetime) -> dict[str, Any]:
    """A new contact's row (``_NEW_COLUMNS``): the address normalised, opted in, test
    data when it is on a channel where staff try flows out."""
    return {
        "channel": channel,
        "address": _stored_address(normalise_address(address)),
        "address_key": key,
        "opted_out": False,
        "is_test": channel in TEST_CHANNELS,
        "created_at": now,
        "updated_at": now,
    }


def _stored_address(address: str) -> str:
    """The value written to ``contacts.address`` for ``address`` (the only write)."""
    return address


def _address_from(stored: Any) -> str:
    """The address held in a ``contacts.address`` value (every read goes through here)."""
    return str(stored)


def _shape(row: Any) -> StoredContact:
    return StoredContact(
        id=int(row.id),
        channel=row.channel,
        language=row.language,
        opted_out=bool(row.opted_out),
        opted_out_at=row.opted_out_at,
        unreachable_reason=row.unreachable_reason,
        unreachable_at=row.unreachable_at,
        created_at=row.created_at,
        is_test=bool(row.is_test),
    )


# --- batches (the clock's follow-up path) -----------------------------------------------------


def lock_many(session: Session, contact_ids: Iterable[int]) -> dict[int, tuple[StoredContact, str]]:
    """Contacts by id with their addresses, locked until the transaction ends.

    One statement for many contacts, locked like ``find_or_create`` locks one. The rows
    are locked in id order, so two transactions locking overlapping sets never wait on
    each other in a cycle. Ids with no contact (erased meanwhile) are missing from the
    answer.
    """
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    rows = session.execute(
        sa.select(*_PUBLIC_COLUMNS, _contacts.c.address)
        .where(one_of(session, _contacts.c.id, ids))
        .order_by(_contacts.c.id)
        .with_for_update(of=_contacts)
    )
    return {int(row.id): (_shape(row), _address_from(row.address)) for row in rows}


def find_many(
    store: ContactStore, session: Session, addresses: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], StoredContact]:
    """``ContactStore.find`` for many ``(channel, address)`` pairs, a statement per
    channel and 500 addresses: the pairs found, as given, with their contacts."""
    found: dict[tuple[str, str], StoredContact] = {}
    by_channel: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for channel, address in dict.fromkeys(addresses):
        key = store.address_key(channel, address)
        by_channel.setdefault(channel, {}).setdefault(key, []).append((channel, address))
    for channel, keyed in by_channel.items():
        keys = sorted(keyed)
        for start in range(0, len(keys), 500):
            rows = session.execute(
                sa.select(*_PUBLIC_COLUMNS, _contacts.c.address_key).where(
                    _contacts.c.channel == channel,
                    one_of(session, _contacts.c.address_key, keys[start : start + 500]),
                )
            )
            for row in rows:
                for pair in keyed[row.address_key]:
                    found[pair] = _shape(row)
    return found


def find_or_create_many(
    store: ContactStore,
    session: Session,
    addresses: Iterable[tuple[str, str]],
    now: datetime,
) -> dict[tuple[str, str], StoredContact]:
    """``ContactStore.find_or_create(lock=False)`` for many ``(channel, address)`` pairs.

    The known ones are looked up together (``find_many``), the new ones inserted in one
    statement per 500; one a racing transaction created first is looked up again.
    """
    wanted = list(dict.fromkeys(addresses))
    found = find_many(store, session, wanted)
    missing = [pair for pair in wanted if pair not in found]
    insert: Any = (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert
    for start in range(0, len(missing), 500):
        part = missing[start : start + 500]
        keyed: dict[tuple[str, str], tuple[str, str]] = {}
        for channel, address in part:  # (two spellings of one address: one row)
            keyed.setdefault((channel, store.address_key(channel, address)), (channel, address))
        rows = session.execute(  # an executemany: compiled once, sent as multi-row INSERTs
            insert(_contacts)
            .on_conflict_do_nothing(index_elements=["channel", "address_key"])
            .returning(*_PUBLIC_COLUMNS, _contacts.c.address_key),
            [_new_row(ch, address, key, now) for (ch, key), (_, address) in keyed.items()],
        )
        for row in rows:
            found[keyed[(row.channel, row.address_key)]] = _shape(row)
    raced = [pair for pair in missing if pair not in found]
    if raced:
        found.update(find_many(store, session, raced))
    if len(found) != len(wanted):  # pragma: no cover - inserted above or by a racing one
        raise RuntimeError("contacts vanished right after they were created")
    return found


def addresses_many(session: Session, contact_ids: Iterable[int]) -> dict[int, str]:
    """The addresses of contacts by id, in one short statement whatever the count (the
    outbox claims a batch at a time)."""
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    rows = session.execute(
        sa.select(_contacts.c.id, _contacts.c.address).where(one_of(session, _contacts.c.id, ids))
    )
    return {int(row.id): _address_from(row.address) for row in rows}
