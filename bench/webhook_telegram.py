"""Telegram webhook throughput: palaute under gunicorn vs a bare Flask endpoint, same run.

Both servers run as ``gunicorn -w 2`` on loopback and get the same load: simulated
people, each in their own private chat, go through the library-visit survey from
flows/ exactly as Telegram delivers it - ``/start kirjasto_kaarina`` (deep link), a
button press (callback_query), a typed answer, a button press, a typed answer: five
updates per chat, posted in order per chat by several client threads at once. About 5 %
of the updates are posted twice (Telegram redelivers after a timeout): each must be
answered and recorded once.

The baseline endpoint does the least a Telegram webhook can: check the secret header,
parse the JSON and answer with a ``sendMessage`` method body. palaute also parses the
Update with python-telegram-bot, locks the contact, dedupes on update_id, stores the
inbound message, the run, the answer and the reply, and stores the button answer/edit
calls. The ratio (palaute requests/s / baseline requests/s) is the figure; target >= 0.35.
The chats are split into rounds that alternate between the two servers (both running);
the figure is the median of the rounds' ratios, so load from elsewhere on the machine
hits both sides alike.

After the run the database is checked: one inbound row per distinct update, four answers
per chat, every run completed.

    .venv/bin/python -m bench.webhook_telegram [--chats 150] [--clients 8] [--rounds 3]
        [--backends sqlite,postgres] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--app-spec "palaute.app:create_app()"]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, jsonify, request

from bench.harness import (
    DUPLICATE_SHARE,
    CpuMeter,
    Result,
    database,
    drive,
    gunicorn,
    merge,
)
from storage.db import make_engine

ROOT = Path(__file__).resolve().parent.parent

SECRET = "bench-secret_" + "x" * 20
HEADER = "X-Telegram-Bot-Api-Secret-Token"
PATH = "/webhooks/telegram"
TARGET = 0.35


# --- the baseline app (gunicorn loads it as bench.webhook_telegram:bare_app()) ------------


def bare_app() -> Flask:
    import hmac

    app = Flask("bare_telegram")

    @app.post(PATH)
    def webhook() -> Any:
        given = request.headers.get(HEADER, "")
        if not hmac.compare_digest(given.encode(), SECRET.encode()):
            return Response(status=403)
        update = request.get_json(force=True)
        chat = (update.get("message") or update["callback_query"]["message"])["chat"]["id"]
        return jsonify({"method": "sendMessage", "chat_id": chat, "text": "Kiitos!"})

    return app


# --- updates -------------------------------------------------------------------------------


def _user(chat: int) -> dict[str, Any]:
    return {"id": chat, "is_bot": False, "first_name": "Aino", "language_code": "fi"}


def text_update(update_id: int, chat: int, text: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": update_id % 1_000_000,
        "from": _user(chat),
        "chat": {"id": chat, "first_name": "Aino", "type": "private"},
        "date": 1778749925,
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
    return {"update_id": update_id, "message": message}


def press_update(update_id: int, chat: int, step: str, value: str) -> dict[str, Any]:
    keyboard = [[{"text": value, "callback_data": f"{step}:{value}"}]]
    return {
        "update_id": update_id,
        "callback_query": {
            "id": str(update_id * 13),
            "from": _user(chat),
            "message": {
                "message_id": update_id % 1_000_000,
                "from": {"id": 1, "is_bot": True, "first_name": "Bot", "username": "bench_bot"},
                "chat": {"id": chat, "first_name": "Aino", "type": "private"},
                "date": 1778749925,
                "text": "Kysymys",
                "reply_markup": {"inline_keyboard": keyboard},
            },
            "chat_instance": "-7315208264719835214",
            "data": f"{step}:{value}",
        },
    }


def conversation(chat: int, first_id: int) -> list[dict[str, Any]]:
    return [
        text_update(first_id, chat, "/start kirjasto_kaarina"),
        press_update(first_id + 1, chat, "overall", "4"),
        text_update(first_id + 2, chat, "Hyvä valikoima ja ystävällinen henkilökunta"),
        press_update(first_id + 3, chat, "visit_reason", "event"),
        text_update(first_id + 4, chat, "Kiitos!"),
    ]


# --- load ----------------------------------------------------------------------------------


def run_load(
    name: str,
    port: int,
    chats: list[list[dict[str, Any]]],
    clients: int,
    meter: CpuMeter | None = None,
) -> Result:
    """Drive the chats' updates, each posted with the secret header; every answer must be
    a 200 (its content is checked in the database afterwards)."""
    headers = {"Content-Type": "application/json", HEADER: SECRET}
    messages = [[(json.dumps(update).encode(), headers) for update in chat] for chat in chats]

    def judge(index: int, status: int, payload: bytes) -> str | None:
        return None if status == 200 else f"{status} {payload[:200]!r}"

    return drive(name, port, PATH, messages, clients, judge, meter=meter)


# --- servers and databases -------------------------------------------------------------------


def check_database(url: str, chats: int, distinct_updates: int, warm: int) -> list[str]:
    """The measured chats' rows (plus the warm-up chats' ``warm`` complete conversations)."""
    chats += warm
    distinct_updates += 5 * warm
    engine = make_engine(url)
    problems = []
    try:
        with engine.connect() as conn:
            inbound = conn.execute(sa.text(
                "SELECT count(*) FROM messages WHERE channel = 'telegram' AND direction = 'in'"
            )).scalar_one()  # fmt: skip
            answers = conn.execute(sa.text("SELECT count(*) FROM answers")).scalar_one()
            completed = conn.execute(
                sa.text("SELECT count(*) FROM flow_runs WHERE status = 'completed'")
            ).scalar_one()
    finally:
        engine.dispose()
    if inbound != distinct_updates:
        problems.append(f"{inbound} inbound rows for {distinct_updates} distinct updates")
    if answers != 4 * chats:
        problems.append(f"{answers} answers, expected {4 * chats}")
    if completed != chats:
        problems.append(f"{completed} completed runs, expected {chats}")
    return problems


def warm_up(port: int) -> None:
    """Warm both workers through the whole path (imports, flows, language detectors built
    in the background) with chats outside the measured set, then let that warm-up finish."""
    warm_chats = [conversation(5_000_000_000 + i, 800_000_000 + i * 10) for i in range(8)]
    run_load("warm-up", port, warm_chats, 4)
    time.sleep(3)
    run_load("warm-up", port, warm_chats[:2], 2)


def bench(backend: str, args: argparse.Namespace) -> bool:
    base = 6_000_000_000 + random.randrange(10**8)
    chats = [conversation(base + i, 900_000_000 + i * 10) for i in range(args.chats)]
    distinct = sum(len(c) for c in chats)
    rounds = max(1, args.rounds)
    slices = [chats[i::rounds] for i in range(rounds)]
    with database(backend, args.pg_url) as url:
        env = {
            "DATABASE_URL": url,
            "FLOWS_DIR": str(ROOT / "flows"),
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_BOT_TOKEN": "",
            "LOG_LEVEL": "WARNING",
        }
        # Both servers up at once; the rounds alternate between them, so a burst of load
        # from elsewhere on the machine hits both sides of a round's ratio alike.
        bare_parts: list[Result] = []
        full_parts: list[Result] = []
        with (
            gunicorn("bench.webhook_telegram:bare_app()", env, warm_up) as bare_port,
            gunicorn(args.app_spec, env, warm_up) as full_port,
        ):
            bare_meter, full_meter = CpuMeter(bare_port, url), CpuMeter(full_port, url)
            for part in slices:
                # The baseline answers a round in a fraction of a second: repeat it (it
                # stores nothing) until it has run for a second, to steady its figure.
                started, bare_round = time.perf_counter(), []
                while not bare_round or time.perf_counter() - started < 1.0:
                    bare_round.append(run_load("bare", bare_port, part, args.clients, bare_meter))
                bare_parts.append(merge("bare", bare_round))
                full_parts.append(run_load("palaute", full_port, part, args.clients, full_meter))
        problems = check_database(url, args.chats, distinct, warm=8)
    bare = merge("bare Flask endpoint", bare_parts)
    full = merge(f"palaute ({backend})", full_parts)
    ratios = sorted(f.rps / b.rps for b, f in zip(bare_parts, full_parts, strict=True) if b.rps)
    ratio = ratios[len(ratios) // 2] if ratios else 0.0
    print(bare.line())
    print(full.line())
    for measured in (bare, full):
        if measured.cpu_line():
            print(measured.cpu_line())
    ok = ratio >= TARGET and not full.errors and not full.duplicate_mismatches and not problems
    print(f"ratio {ratio:.2f} (median of {rounds} alternating rounds: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}; target >= {TARGET})  stored: "
          + ("; ".join(problems) if problems else "every update once, all runs completed")
          + ("" if ok else "  << BELOW TARGET OR INCONSISTENT"))  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=150)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/palaute rounds")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--app-spec", default="palaute.app:create_app()")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(f"{args.chats} chats x 5 updates (+~{DUPLICATE_SHARE:.0%} repeated), "
          f"{args.clients} client threads, gunicorn -w 2 on 127.0.0.1")  # fmt: skip
    results = [bench(backend.strip(), args) for backend in args.backends.split(",") if backend]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
