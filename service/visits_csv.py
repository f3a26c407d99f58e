"""Reading visit exports (CSV) as patient and booking systems and Excel write them in Finland.

* Encodings: UTF-8, UTF-8 with BOM (Excel's "CSV UTF-8"), Windows-1252 (Excel's plain
  "CSV" on Finnish Windows); UTF-16 with BOM is read too. Detected from the bytes.
* Separators: ``;`` (Excel with Finnish regional settings) or ``,``, or tab: sniffed from
  the header line outside quotes.
* Columns: recognised by common Finnish, Swedish and English header names, or mapped
  explicitly (``--column phone=Matkapuhelin``).

Every data row keeps the line number it starts on, for the rejected-lines report.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from service.visits import FIELDS

HEADER_NAMES: dict[str, tuple[str, ...]] = {
    "external_id": (
        "externalid", "id", "visitid", "käyntiid", "käyntitunnus", "käynninid", "käyntinumero",
        "ajanvarausid", "ajanvaraustunnus", "varausnumero", "varaustunnus", "varausid",
        "bookingid", "bookingnumber", "appointmentid", "besöksid", "bokningsid",
        "bokningsnummer", "tunnus",
    ),
    "visit_at": (
        "visitat", "visittime", "visitdatetime", "käyntiaika", "aika", "ajankohta", "datetime",
        "besökstid", "tidpunkt", "appointmenttime", "alkuaika", "starttime", "varausaika",
    ),
    "visit_date": (
        "visitdate", "date", "päivämäärä", "pvm", "päivä", "käyntipäivä", "datum", "besöksdatum",
    ),
    "visit_time": ("time", "klo", "kellonaika", "kloaika", "tid", "klockslag", "kl"),
    "phone": (
        "phone", "phonenumber", "mobile", "mobilephone", "mobilenumber", "puhelin",
        "puhelinnumero", "matkapuhelin", "matkapuhelinnumero", "puh", "gsm", "mobiili",
        "kännykkä", "telefon", "telefonnummer", "mobil", "mobilnummer", "msisdn",
    ),
    "telegram_chat_id": ("telegramchatid", "telegram", "chatid"),
    "service_point": (
        "servicepoint", "toimipiste", "palvelupiste", "yksikkö", "toimipaikka", "paikka",
        "location", "unit", "site", "verksamhetsställe", "enhet", "serviceställe",
    ),
    "language": ("language", "lang", "kieli", "asiointikieli", "språk", "servicespråk"),
    "flow": ("flow", "survey", "kysely", "enkät"),
    "timezone": ("timezone", "tz", "aikavyöhyke", "tidszon"),
}  # fmt: skip


class CsvImportError(ValueError):
    """The file as a whole cannot be imported (unreadable, no header, unmapped columns).

    Nothing was stored. The message says what to change; retrying unchanged won't help.
    """


@dataclass(frozen=True)
class CsvRow:
    line: int  # 1-based line number where the row starts in the file
    values: dict[str, str]  # field -> cell text (only mapped fields)


@dataclass
class CsvExport:
    encoding: str
    delimiter: str
    header: list[str]
    mapping: dict[str, str]  # field -> header as written in the file
    rows: list[CsvRow] = field(default_factory=list)

    @property
    def delimiter_name(self) -> str:
        return {";": "semicolon", ",": "comma", "\t": "tab"}.get(self.delimiter, self.delimiter)


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The text and the encoding it was read with."""
    if encoding:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as error:
            raise CsvImportError(f"the file is not readable as {encoding}: {error}") from error
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; Latin-1 reads everything.
        return data.decode("latin-1"), "iso-8859-1"


def sniff_delimiter(header_line: str) -> str:
    """``;``, ``,`` or tab: whichever occurs most in the header outside quotes (``;`` on ties)."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: unquoted.count(d) for d in (";", ",", "\t")}
    best = max(counts.values())
    if best == 0:
        return ";"
    for delimiter in (";", "\t", ","):
        if counts[delimiter] == best:
            return delimiter
    return ";"  # pragma: no cover


def _key(header: str) -> str:
    return re.sub(r"[\s_\-.:/()#]", "", header.strip().lower())


def map_columns(header: list[str], explicit: Mapping[str, str]) -> dict[str, str]:
    """Field -> header. Explicit choices first, then recognised header names."""
    mapping: dict[str, str] = {}
    by_key = {_key(h): h for h in header if h.strip()}
    for name, column in explicit.items():
        if name not in FIELDS:
            raise CsvImportError(
                f"unknown field {name!r} in --column {name}={column}: use one of "
                + ", ".join(FIELDS)
            )
        found = by_key.get(_key(column))
        if found is None:
            raise CsvImportError(
                f"--column {name}={column}: the file has no column {column!r}; its columns are: "
                + ", ".join(repr(h) for h in header)
            )
        mapping[name] = found
    taken = set(mapping.values())
    for name in FIELDS:
        if name in mapping:
            continue
        for synonym in HEADER_NAMES.get(name, ()):
            guess = by_key.get(synonym)
            if guess is not None and guess not in taken:
                mapping[name] = guess
                taken.add(guess)
                break
    if "visit_at" in mapping and "visit_date" in mapping and "visit_date" not in explicit:
        del mapping["visit_date"]  # one full date-time column wins over a guessed date column
    missing = []
    if "external_id" not in mapping:
        missing.append("external_id (the visit or booking id)")
    if "visit_at" not in mapping and "visit_date" not in mapping:
        missing.append("visit_at (date and time) or visit_date (+ visit_time)")
    if missing:
        raise CsvImportError(
            "cannot tell which column holds "
            + " and ".join(missing)
            + "; the file's columns are: "
            + ", ".join(repr(h) for h in header)
            + ". Map them, e.g. --column external_id=Käyntitunnus --column visit_at=Aika"
        )
    return mapping


def read_export(
    data: bytes,
    *,
    columns: Mapping[str, str] | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> CsvExport:
    text, used_encoding = decode(data, encoding)
    if not text.strip():
        raise CsvImportError("the file is empty")
    first_line = text.splitlines()[0] if text else ""
    chosen = delimiter or sniff_delimiter(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=chosen)
    try:
        header = next(reader)
    except StopIteration as error:  # pragma: no cover - text.strip() was non-empty
        raise CsvImportError("the file has no header line") from error
    header = [h.strip() for h in header]
    mapping = map_columns(header, columns or {})
    index = {name: header.index(column) for name, column in mapping.items()}
    export = CsvExport(used_encoding, chosen, header, mapping)
    export.rows = list(_rows(reader, index))
    return export


class _LineReader(Protocol):
    """What ``csv.reader`` gives: rows, and the physical line the last one ended on."""

    @property
    def line_num(self) -> int: ...

    def __next__(self) -> list[str]: ...


def _rows(reader: _LineReader, index: Mapping[str, int]) -> Iterator[CsvRow]:
    previous_end = 1  # the header line
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise CsvImportError(f"line {previous_end + 1}: broken CSV ({error})") from error
        start = previous_end + 1
        previous_end = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # blank line, or ";;;;" rows Excel leaves at the end
        values = {name: cells[i].strip() if i < len(cells) else "" for name, i in index.items()}
        yield CsvRow(line=start, values=values)
