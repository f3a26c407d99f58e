"""`palaute qr`: the printed codes decode to the deep link and the SMS shortcut."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from click.testing import CliRunner

from palaute.commands.qr import qr

FLOW = """\
id: library-visit
title: {fi: Kirjastokäynti, sv: Biblioteksbesök, en: Library visit}
languages: [fi, sv, en]
default_language: fi
service_points: [kaarina-main-library, piikkio-branch]
triggers:
  keywords: {fi: [kirjasto], sv: [bibliotek], en: [library]}
  codes:
    - {code: kirjasto_kaarina_1, service_point: kaarina-main-library}
closing: {fi: Kiitos!, sv: Tack!, en: Thank you!}
steps:
  - id: q1
    type: scale
    scale: 1-5
    text:
      fi: Kuinka tyytyväinen olit?
      sv: Hur nöjd var du?
      en: How satisfied were you?
"""


def read_png(path: Path) -> np.ndarray:
    """A grey-scale PNG (segno writes 1-bit, non-interlaced) as a uint8 array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert (colour, interlace) == (0, 0) and depth in (1, 8)
    raw = zlib.decompress(idat)
    stride = (width * depth + 7) // 8
    rows, previous, offset = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[offset], bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - 1] if i else 0
            up, corner = previous[i], previous[i - 1] if i else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    if depth == 8:
        return np.array([list(row) for row in rows], dtype=np.uint8)
    bits = np.unpackbits(np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, stride))
    return (bits.reshape(height, stride * 8)[:, :width] * 255).astype(np.uint8)


def decode(path: Path) -> str:
    found = zxingcpp.read_barcodes(read_png(path))
    assert len(found) == 1, f"{path.name}: expected one QR code, found {len(found)}"
    return str(found[0].text)


@pytest.fixture
def flows_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "library-visit.yaml").write_text(FLOW, encoding="utf-8")
    monkeypatch.setenv("FLOWS_DIR", str(folder))
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "kirjastokysely_bot")
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+358451234567")
    return folder


def test_writes_telegram_and_sms_codes_that_scan(flows_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "posters"
    result = CliRunner().invoke(
        qr, ["library-visit", "--point", "kaarina-main-library", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    link = "https://t.me/kirjastokysely_bot?start=kirjasto_kaarina_1"
    assert link in result.output
    stem = out / "library-visit-kaarina-main-library"
    assert decode(Path(f"{stem}-telegram.png")) == link
    assert decode(Path(f"{stem}-sms.png")) == "SMSTO:+358451234567:KIRJASTO"
    svg = Path(f"{stem}-telegram.svg").read_text(encoding="utf-8")
    assert svg.startswith("<?xml") and "<svg" in svg and "Kirjastokäynti" in svg


def test_point_without_a_code_is_a_clear_error(flows_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        qr, ["library-visit", "--point", "piikkio-branch", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0
    assert "no start code for service point 'piikkio-branch'" in result.output
    assert "service_point: piikkio-branch" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--point", "x"], "no flow 'nope'"),
        (["library-visit", "--point", "turku"], "has no service point 'turku'"),
    ],
)
def test_unknown_flow_or_point(flows_dir: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(qr, args)
    assert result.exit_code != 0
    assert message in result.output


def test_needs_a_bot_username(
    flows_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "")
    result = CliRunner().invoke(
        qr, ["library-visit", "--point", "kaarina-main-library", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "TELEGRAM_BOT_USERNAME" in result.output


def test_sms_code_skipped_without_a_number(
    flows_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "")
    result = CliRunner().invoke(
        qr, ["library-visit", "--point", "kaarina-main-library", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "SMS: not written, no SMS number" in result.output
    assert not list(tmp_path.glob("*-sms.*"))
    assert len(list(tmp_path.glob("*-telegram.*"))) == 2
