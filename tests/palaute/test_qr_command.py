"""`palaute qr`: the printed codes and posters decode to the deep link and the SMS
shortcut, and the SMS a poster prepares starts the survey at that poster's point."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import Engine, text

from bot.catalogue import Catalogue
from palaute.commands.qr import qr
from tests.storage.support import NOW, make_service, sms

REPO = Path(__file__).resolve().parents[2]

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
    - {code: kirjasto_piikkio, service_point: piikkio-branch}
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


def decode_poster(path: Path) -> str:
    with Image.open(path) as image:
        found = zxingcpp.read_barcodes(np.array(image.convert("L")))
    assert len(found) == 1, f"{path.name}: expected one QR code, found {len(found)}"
    return str(found[0].text)


def run_qr(*args: str) -> str:
    result = CliRunner().invoke(qr, list(args))
    assert result.exit_code == 0, result.output
    return result.output


KAARINA_LINK = "https://t.me/kirjastokysely_bot?start=kirjasto_kaarina_1"


def test_every_point_gets_its_own_telegram_and_sms_code(flows_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "posters"
    output = run_qr("library-visit", "--out", str(out))  # no --point: every service point
    assert KAARINA_LINK in output
    expected = {
        "kaarina-main-library-telegram": KAARINA_LINK,
        "kaarina-main-library-sms": "SMSTO:+358451234567:kirjasto_kaarina_1",
        "piikkio-branch-telegram": "https://t.me/kirjastokysely_bot?start=kirjasto_piikkio",
        "piikkio-branch-sms": "SMSTO:+358451234567:kirjasto_piikkio",
    }
    for stem, content in expected.items():
        assert decode(out / f"library-visit-{stem}.png") == content
        assert decode_poster(out / f"library-visit-{stem}-poster.png") == content
    svg = (out / "library-visit-kaarina-main-library-telegram.svg").read_text(encoding="utf-8")
    assert svg.startswith("<?xml") and "<svg" in svg and "Kirjastokäynti" in svg


def test_the_poster_has_the_title_and_scan_to_give_feedback_in_the_flow_languages(
    flows_dir: Path, tmp_path: Path
) -> None:
    run_qr("library-visit", "--point", "kaarina-main-library", "--out", str(tmp_path))
    stem = tmp_path / "library-visit-kaarina-main-library-sms-poster"
    svg = stem.with_suffix(".svg").read_text(encoding="utf-8")
    for line in ("Kirjastokäynti", "Biblioteksbesök", "Library visit"):
        assert f">{line}</text>" in svg
    assert 'xml:lang="sv">Skanna och ge respons' in svg
    assert 'xml:lang="fi">Skannaa ja anna palautetta' in svg
    assert 'xml:lang="en">Scan to give feedback' in svg
    assert "kirjasto_kaarina_1 → +358451234567" in svg
    assert 'width="210mm" height="297mm"' in svg
    with Image.open(stem.with_suffix(".png")) as png:
        assert png.size == (1654, 2339)  # A4 at 200 dpi
    pdf = stem.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and b"/MediaBox [ 0 0 595.44 842.04 ]" in pdf
    assert b"/Title" in pdf  # the flow title in the document information


def test_sms_only_needs_no_bot_username(
    flows_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "")
    output = run_qr("library-visit", "--point", "kaarina-main-library", "--out", str(tmp_path))
    assert "Telegram: not written (set TELEGRAM_BOT_USERNAME or --bot)" in output
    assert not list(tmp_path.glob("*telegram*"))
    assert decode(tmp_path / "library-visit-kaarina-main-library-sms.png") == (
        "SMSTO:+358451234567:kirjasto_kaarina_1"
    )


def test_telegram_only_needs_no_sms_number(
    flows_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "")
    output = run_qr("library-visit", "--point", "kaarina-main-library", "--out", str(tmp_path))
    assert "SMS: not written (set TWILIO_FROM_NUMBER or --sms-number)" in output
    assert not list(tmp_path.glob("*-sms*"))
    assert len(list(tmp_path.glob("*-telegram*"))) == 5  # code png/svg, poster png/svg/pdf


def test_no_channel_at_all_is_a_clear_error(
    flows_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "")
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "")
    result = CliRunner().invoke(qr, ["library-visit", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "TELEGRAM_BOT_USERNAME (or --bot)" in result.output
    assert "TWILIO_FROM_NUMBER (or --sms-number)" in result.output
    assert not (tmp_path / "o").exists()


def test_the_sms_each_poster_prepares_starts_the_survey_at_its_point(
    flows_dir: Path, tmp_path: Path, engine: Engine
) -> None:
    run_qr("library-visit", "--out", str(tmp_path))
    service = make_service(engine, Catalogue.load(flows_dir))
    for number, point in enumerate(["kaarina-main-library", "piikkio-branch"]):
        content = decode(tmp_path / f"library-visit-{point}-sms.png")
        body = content.rsplit(":", 1)[1]
        if number:
            body = body.upper()  # phones may change the case
        result = service.handle(sms(f"+35840000000{number}", body), NOW)
        assert [m.text for m in result.replies] == ["Kuinka tyytyväinen olit?"]
    with engine.connect() as connection:
        started = connection.execute(
            text("SELECT service_point FROM flow_runs ORDER BY id")
        ).scalars()
        assert list(started) == ["kaarina-main-library", "piikkio-branch"]


def test_point_without_a_code_is_a_clear_error(flows_dir: Path, tmp_path: Path) -> None:
    flow = flows_dir / "library-visit.yaml"
    flow.write_text(
        flow.read_text(encoding="utf-8").replace(
            "    - {code: kirjasto_piikkio, service_point: piikkio-branch}\n", ""
        ),
        encoding="utf-8",
    )
    result = CliRunner().invoke(qr, ["library-visit", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "no start code for service point 'piikkio-branch'" in result.output
    assert "service_point: piikkio-branch" in result.output
    assert not (tmp_path / "o").exists()  # nothing written for any point


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


def test_the_readme_commands_work_on_the_shipped_flows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWS_DIR", str(REPO / "flows"))
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "")
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+358451234567")  # an SMS-only service
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"`palaute qr ([^`]*)`", readme)
    assert len(commands) >= 2
    for command in commands:
        synopsis = re.sub(r"\[[^]]*\]", "", command)  # optional parts of a synopsis
        args = synopsis.replace("FLOW_ID", "library-visit").split()
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(qr, args)
        assert result.exit_code == 0, f"palaute qr {command}: {result.output}"
    assert decode(tmp_path / "posters" / "library-visit-kaarina-main-library-sms.png") == (
        "SMSTO:+358451234567:kirjasto_kaarina"
    )
