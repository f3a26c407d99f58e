"""Visits in: validation, phone normalisation, time zones and follow-up scheduling.

The same rules apply to ``POST /api/visits`` and ``palaute visits import``. A row is either

* **rejected** (``errors``): it cannot be identified or timed (no visit id, no or
  unreadable visit time, unknown flow, a service point whose flow has no ``followup:``).
  Nothing is stored; fix the row and send it again.
* **accepted**: the visit is stored once per (organisation, source, external id). Its
  follow-up is scheduled, or recorded as *skipped* with a reason (invalid number, no
  channel, unreachable, expired) so that staff see honest response rates.

Phone numbers are normalised to E.164 with ``phonenumbers`` (the default region is
``PHONE_DEFAULT_REGION``, Finland unless set); digits-only numbers that lost their
leading ``+`` or ``0`` in a spreadsheet are recovered when that gives a valid number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as phone_timezone
from sqlalchemy import Engine

from bot.clean import clean_text
from bot.conversation import FlowCatalogue
from bot.flow import Flow
from bot.followup import (
    FollowupRuleError,
    SkipReason,
    expires_at,
    first_send_time,
    local_instants,
)
from storage import visits as visit_store
from storage.contacts import ContactStore
from storage.contacts import find_many as find_contacts
from storage.contacts import find_or_create_many as find_or_create_contacts
from storage.db import read_only, transaction
from storage.funnel import FlowFunnel, funnel

FIELDS = (
    "external_id",
    "visit_at",
    "visit_date",
    "visit_time",
    "timezone",
    "phone",
    "telegram_chat_id",
    "service_point",
    "language",
    "flow",
)
MAX_ZONE_NAME = 64  # the longest IANA name is 32 characters
MAX_TEXT = {"external_id": 200, "service_point": 100, "flow": 100, "source": 100}

# A language as people write it in an export ("suomi", "Swedish") -> its code.
LANGUAGE_CODES = {
    "suomi": "fi", "finnish": "fi", "finska": "fi", "fin": "fi",
    "svenska": "sv", "ruotsi": "sv", "swedish": "sv", "swe": "sv",
    "englanti": "en", "english": "en", "engelska": "en", "eng": "en",
}  # fmt: skip
_LANGUAGE = re.compile(r"^([a-z]{2,3})(?:[-_][a-z0-9]{2,8})*$")


@dataclass(frozen=True)
class RowError:
    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True)
class Phone:
    e164: str | None
    zone: str | None = None  # from the number's country (or area code)
    skip: SkipReason | None = None
    note: str | None = None


@dataclass(frozen=True)
class Visit:
    """A validated visit, ready to store. ``skip`` set: stored, but no follow-up is sent."""

    organisation: str
    source: str
    external_id: str
    service_point: str | None
    visit_at: datetime  # aware, UTC
    timezone: str  # the contact's IANA zone
    channel: str | None  # "sms" | "telegram"; None: no way to reach the citizen
    address: str | None  # E.164 phone number or Telegram chat id
    language: str | None
    flow_id: str
    due_at: datetime | None  # first follow-up; None when skipped
    expires_at: datetime
    skip: SkipReason | None = None
    notes: tuple[str, ...] = ()


@dataclass
class Intake:
    """Validation settings shared by the API and the CSV import."""

    flows: FlowCatalogue
    organisation: str
    organisation_zone: str = "Europe/Helsinki"
    default_region: str = "FI"
    default_flow: str | None = None
    naive_zone: str | None = None  # zone for visit times without offset (CSV); None: required
    _zones: dict[str, ZoneInfo] = field(default_factory=dict, repr=False)

    def zone(self, name: str) -> ZoneInfo:
        if name not in self._zones:
            self._zones[name] = ZoneInfo(name)
        return self._zones[name]

    def known_zone(self, name: str) -> bool:
        """True when ``name`` is an IANA zone. ZoneInfo reads a file named after it, so a
        folder (``Europe``) or an overlong name fails with OSError, not only ValueError."""
        if len(name) > MAX_ZONE_NAME:
            return False
        try:
            self.zone(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return False
        return True

    def validate(
        self, raw: Mapping[str, Any], *, source: str, now: datetime
    ) -> Visit | list[RowError]:
        """Check one row. Returns the visit or every problem found in the row."""
        errors: list[RowError] = []
        notes: list[str] = []
        row = {k: _text(v) for k, v in raw.items() if k in (*FIELDS, "source")}
        source = row.get("source") or _text(source)
        if len(source) > MAX_TEXT["source"]:
            errors.append(RowError("source", f"longer than {MAX_TEXT['source']} characters"))

        external_id = row.get("external_id")
        if not external_id:
            errors.append(RowError("external_id", "missing: every visit needs its own id"))
        elif len(external_id) > MAX_TEXT["external_id"]:
            errors.append(RowError("external_id", "longer than 200 characters"))

        service_point = row.get("service_point") or None
        if service_point and len(service_point) > MAX_TEXT["service_point"]:
            errors.append(RowError("service_point", "longer than 100 characters"))

        zone_name: str | None = None
        if row.get("timezone"):
            if self.known_zone(row["timezone"]):
                zone_name = row["timezone"]
            else:
                shown = row["timezone"][:MAX_ZONE_NAME] + (
                    "…" if len(row["timezone"]) > MAX_ZONE_NAME else ""
                )
                errors.append(
                    RowError("timezone", f"unknown time zone {shown!r} "
                             "(use a name like Europe/Helsinki)")
                )  # fmt: skip

        channel, address, phone = self._channel(row, errors)
        if phone is not None and phone.note:
            notes.append(phone.note)
        if zone_name is None:
            zone_name = (phone.zone if phone is not None else None) or self.organisation_zone
        zone = self.zone(zone_name)

        visit_at = self._visit_time(row, zone, errors)

        flow = self._flow(row.get("flow"), service_point, errors)
        language = _language(row.get("language"), errors)

        if errors or visit_at is None or flow is None or external_id is None:
            return errors
        assert flow.followup is not None
        skip = phone.skip if phone is not None else None
        if channel is None and skip is None:
            skip = SkipReason.NO_CHANNEL
        try:
            due = first_send_time(flow.followup, visit_at, zone)
            deadline = expires_at(flow.followup, visit_at, zone)
        except FollowupRuleError as error:
            return [RowError("flow", f"flow {flow.id!r} has an unusable follow-up rule: {error}")]
        except OverflowError:  # the follow-up would fall after the year 9999
            when = row.get("visit_at") or visit_at.isoformat()
            return [RowError("visit_at", f"{when!r} is too far in the future for a follow-up")]
        if skip is None and (due >= deadline or now >= deadline):
            skip = SkipReason.EXPIRED
            notes.append("too late: the follow-up would come after the flow's give_up_after")
        return Visit(
            organisation=self.organisation,
            source=source,
            external_id=external_id,
            service_point=service_point,
            visit_at=visit_at,
            timezone=zone_name,
            channel=channel,
            address=address,
            language=language,
            flow_id=flow.id,
            due_at=None if skip else due,
            expires_at=deadline,
            skip=skip,
            notes=tuple(notes),
        )

    # --- parts ---------------------------------------------------------------------------

    def _channel(
        self, row: Mapping[str, str], errors: list[RowError]
    ) -> tuple[str | None, str | None, Phone | None]:
        raw_phone = row.get("phone")
        chat = row.get("telegram_chat_id")
        if raw_phone:
            phone = normalise_phone(raw_phone, self.default_region)
            return ("sms" if phone.e164 else None), phone.e164, phone
        if chat:
            if not re.fullmatch(r"-?\d{1,20}", chat):
                errors.append(RowError("telegram_chat_id", f"{chat!r} is not a Telegram chat id"))
                return None, None, None
            return "telegram", chat, None
        return None, None, None

    def _visit_time(
        self, row: Mapping[str, str], zone: ZoneInfo, errors: list[RowError]
    ) -> datetime | None:
        raw = row.get("visit_at")
        if not raw and row.get("visit_date"):
            raw = f"{row['visit_date']} {row.get('visit_time') or ''}".strip()
        if not raw:
            errors.append(RowError("visit_at", "missing: give the visit time, e.g. "
                                   "2026-06-02T10:15:00+03:00"))  # fmt: skip
            return None
        parsed = parse_visit_time(raw)
        if parsed is None:
            errors.append(
                RowError("visit_at", f"{raw!r} is not a date and time (write e.g. "
                         "2026-06-02T10:15:00+03:00 or 2.6.2026 10:15)")
            )  # fmt: skip
            return None
        if parsed.tzinfo is None:
            if self.naive_zone is None and not row.get("timezone"):
                errors.append(
                    RowError("visit_at", f"{raw!r} has no UTC offset: add one (+03:00 or Z) "
                             "or give `timezone`")
                )  # fmt: skip
                return None
            local_zone = zone if row.get("timezone") else self.zone(self.naive_zone or zone.key)
            try:
                return local_instants(parsed, local_zone)[0]
            except OverflowError:
                errors.append(RowError("visit_at", f"{raw!r} is out of range"))
                return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+14:00 is before the year 1 in UTC
            errors.append(RowError("visit_at", f"{raw!r} is out of range"))
            return None

    def _flow(
        self, flow_id: str | None, service_point: str | None, errors: list[RowError]
    ) -> Flow | None:
        if flow_id:
            flow = self.flows.get(flow_id)
            if flow is None:
                known = ", ".join(sorted(f.id for f in self._followup_flows())) or "none"
                errors.append(RowError("flow", f"no flow {flow_id!r} (follow-up flows: {known})"))
                return None
            if flow.followup is None:
                errors.append(RowError("flow", f"flow {flow_id!r} has no `followup:` section"))
                return None
            return flow
        candidates = self._followup_flows()
        if service_point:
            for flow in candidates:
                if service_point in flow.service_points:
                    return flow
            # The point belongs to a flow with no follow-up: any other flow's survey would
            # be the wrong one (library visitors texted the health-centre survey).
            owners = sorted(f.id for f in self.flows.all() if service_point in f.service_points)
            if owners:
                names = " and ".join(owners)
                which = "which have" if len(owners) > 1 else "which has"
                errors.append(
                    RowError("service_point", f"{service_point!r} belongs to flow {names}, "
                             f"{which} no `followup:` section: add `followup:` to {names} "
                             "or name the follow-up flow in `flow`")
                )  # fmt: skip
                return None
        if self.default_flow:
            flow = self.flows.get(self.default_flow)
            if flow is not None and flow.followup is not None:
                return flow
        general = [f for f in candidates if not f.service_points]
        if len(general) == 1:
            return general[0]
        if len(candidates) == 1:
            return candidates[0]
        errors.append(
            RowError("flow", "no flow given and no single follow-up flow fits: add `flow` "
                     "(one of: " + (", ".join(f.id for f in candidates) or "none") + ")")
        )  # fmt: skip
        return None

    def _followup_flows(self) -> list[Flow]:
        return sorted((f for f in self.flows.all() if f.followup is not None), key=lambda f: f.id)


def _text(value: Any) -> str:
    """A field as text, cleaned (``bot.clean``: a NUL would fail the batch's transaction)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        # JSON numbers for ids and chat ids; floats only when integral (Excel "1234.0").
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)
    return clean_text(str(value)).strip()


def _language(raw: str | None, errors: list[RowError]) -> str | None:
    if not raw:
        return None
    lowered = raw.strip().lower()
    lowered = LANGUAGE_CODES.get(lowered, lowered)
    match = _LANGUAGE.match(lowered)
    if match is None:
        errors.append(RowError("language", f"{raw!r} is not a language code like fi, sv or en"))
        return None
    return match.group(1)


# --- phone numbers --------------------------------------------------------------------------


def normalise_phone(raw: str, default_region: str = "FI") -> Phone:
    """E.164 for a phone number written any common way, or why it cannot be used."""
    text = raw.strip()
    candidates = [text]
    digits = re.sub(r"[\s\-./()]", "", text)
    if digits.startswith("00"):
        candidates.append("+" + digits[2:])
    elif digits.isdigit():
        # Spreadsheets drop the leading "+" (358401234567) or "0" (401234567).
        candidates += ["0" + digits, "+" + digits]
    parsed = None
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            parsed = number
            break
    if parsed is None:
        return Phone(None, skip=SkipReason.INVALID_NUMBER, note=f"invalid phone number {raw!r}")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    zone = zone_for_number(parsed)
    if phonenumbers.number_type(parsed) in (
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.SHARED_COST,
    ):
        return Phone(
            e164, zone, SkipReason.UNREACHABLE, f"{e164} is not a mobile number: no SMS possible"
        )
    return Phone(e164, zone)


def zone_for_number(number: phonenumbers.PhoneNumber) -> str | None:
    """The IANA zone of the number's country (or area code), when phonenumbers knows it."""
    for name in phone_timezone.time_zones_for_number(number):
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return name
    return None


# --- visit times ----------------------------------------------------------------------------

_FINNISH = re.compile(
    r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:\s*(?:klo|kl\.?)?\s*(\d{1,2})[.:](\d{2})(?:[.:](\d{2}))?)?$",
    re.IGNORECASE,
)


def parse_visit_time(raw: str) -> datetime | None:
    """ISO 8601 (with or without offset) or Finnish ``2.6.2026 10.15``; naive when no offset."""
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is not None:
        return value
    match = _FINNISH.match(text)
    if match is None:
        return None
    day, month, year, hour, minute, second = match.groups()
    try:
        return datetime.combine(
            date(int(year), int(month), int(day)),
            time(int(hour or 0), int(minute or 0), int(second or 0)),
        )
    except ValueError:
        return None


def row_result(
    index: int, outcome: Visit | Sequence[RowError], status: str | None = None
) -> dict[str, Any]:
    """The JSON shape of one row's result (API and CLI report)."""
    if isinstance(outcome, Visit):
        result: dict[str, Any] = {
            "index": index,
            "external_id": outcome.external_id,
            "status": status or ("skipped" if outcome.skip else "scheduled"),
        }
        if outcome.skip:
            result["skip_reason"] = outcome.skip.value
        if outcome.due_at is not None:
            result["due_at"] = outcome.due_at.isoformat()
        if outcome.notes:
            result["notes"] = list(outcome.notes)
        return result
    return {"index": index, "status": "error", "errors": [e.to_json() for e in outcome]}


def summarise(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        counts[str(result["status"])] = counts.get(str(result["status"]), 0) + 1
    return counts


# --- storing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    status: str  # "scheduled", "skipped" or "duplicate"
    skip: SkipReason | None = None
    note: str | None = None


def store_visits(
    db: Engine, contacts: ContactStore, visits: Sequence[Visit], now: datetime
) -> list[Stored]:
    """Store visits in one transaction; a visit seen before (same source and id) is left as is.

    A Telegram chat the bot has never talked to cannot be written to: such a visit is stored
    with its follow-up skipped as ``no_channel``.
    """
    prepared: list[tuple[visit_store.NewVisit, SkipReason | None, str | None]] = []
    reachable = [
        (v.channel, v.address) for v in visits if v.channel is not None and v.address is not None
    ]
    telegram = [(channel, address) for channel, address in reachable if channel == "telegram"]
    others = [(channel, address) for channel, address in reachable if channel != "telegram"]
    with transaction(db) as session:
        # The contacts of the whole batch in a few statements (created if new; a Telegram
        # chat only if it has written to the bot).
        known = find_contacts(contacts, session, telegram)
        known.update(find_or_create_contacts(contacts, session, others, now))
        for visit in visits:
            skip = visit.skip
            note = None
            contact_id: int | None = None
            if visit.channel is not None and visit.address is not None:
                found = known.get((visit.channel, visit.address))
                if found is not None:
                    contact_id = found.id
                else:  # (only a Telegram chat is not created)
                    skip = skip or SkipReason.NO_CHANNEL
                    note = "the Telegram chat has never written to the bot"
            new = visit_store.NewVisit(
                organisation=visit.organisation,
                source=visit.source,
                external_id=visit.external_id,
                service_point=visit.service_point,
                visit_at=visit.visit_at,
                timezone=visit.timezone,
                contact_id=contact_id,
                channel=visit.channel if contact_id is not None else None,
                language=visit.language,
                flow_id=visit.flow_id,
                due_at=None if skip else visit.due_at,
                skip_reason=skip.value if skip else None,
            )
            prepared.append((new, skip, note))
        added = visit_store.add_visits(session, [p[0] for p in prepared], now)
    results: list[Stored] = []
    for (_, skip, note), (_, created) in zip(prepared, added, strict=True):
        if not created:
            results.append(Stored("duplicate", note="already received: scheduled once"))
        else:
            results.append(Stored("skipped" if skip else "scheduled", skip, note))
    return results


class VisitsService:
    """Visits for a caller without the web app's container (``palaute visits``): store a
    batch, tell which ids are stored already, and report the funnel. Raises StorageError."""

    def __init__(self, db: Engine, *, address_key_secret: str) -> None:
        self.db = db
        self._address_key_secret = address_key_secret

    def store(self, visits: Sequence[Visit], now: datetime) -> list[Stored]:
        # The contact store (and its secret) only where addresses are looked up.
        contacts = ContactStore(self._address_key_secret)
        return store_visits(self.db, contacts, visits, now)

    def known_ids(self, organisation: str, source: str, external_ids: Sequence[str]) -> set[str]:
        """Which of ``external_ids`` are stored already (a dry run stores nothing)."""
        with transaction(read_only(self.db)) as session:
            return visit_store.existing_ids(session, organisation, source, external_ids)

    def funnel(self, organisation: str, since: datetime | None = None) -> list[FlowFunnel]:
        """Per flow: visits, sent, skipped (by reason), delivered, started, completed."""
        with transaction(read_only(self.db)) as session:
            return funnel(session, organisation, since)

    def close(self) -> None:
        self.db.dispose()


def apply_stored(result: dict[str, Any], stored: Stored) -> dict[str, Any]:
    """Update a ``row_result`` with what storing decided."""
    result = dict(result)
    result["status"] = stored.status
    if stored.status == "duplicate":
        result.pop("due_at", None)
        result.pop("skip_reason", None)
    elif stored.skip is not None:
        result["skip_reason"] = stored.skip.value
        result.pop("due_at", None)
    if stored.note:
        result.setdefault("notes", []).append(stored.note)
    return result
