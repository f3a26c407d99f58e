"""The Telegram outbox worker's outcomes against the fake Bot API (the sender alone:
tests/channels/test_telegram_sender.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from channels.telegram.sender import (
    RateLimiter,
    TelegramSender,
)
from fakes.telegram_api import FakeBotAPI
from palaute.app import create_app
from palaute.web import EXTENSION_KEY
from service.telegram_outbox import TelegramOutbox
from storage import messages as message_log
from storage.db import transaction
from tests.channels.telegram_support import CHAT, fast_limiter
from tests.clock import Clock

REPO_FLOWS = Path(__file__).resolve().parents[2] / "flows"


# --- the worker ----------------------------------------------------------------------------


@pytest.fixture
def app(db_url: str, clock: Clock, bot_api: FakeBotAPI) -> Iterator[Flask]:
    application = create_app(
        {
            "TESTING": True,
            "CLOCK": clock,
            "DATABASE_URL": db_url,
            "FLOWS_DIR": REPO_FLOWS,
            "TELEGRAM_BOT_TOKEN": bot_api.token,
            "TELEGRAM_API_BASE_URL": bot_api.base_url,
        }
    )
    yield application
    application.extensions[EXTENSION_KEY].close()


@pytest.fixture
def worker(app: Flask, telegram_sender: TelegramSender, clock: Clock) -> TelegramOutbox:
    services = app.extensions[EXTENSION_KEY]
    return TelegramOutbox(
        services.db, telegram_sender, services.conversations.contacts, clock=clock
    )


def queue_survey(app: Flask, clock: Clock, chat: str = CHAT) -> None:
    services = app.extensions[EXTENSION_KEY]
    services.conversations.start("telegram", chat, "library-visit", now=clock())


def outbox_rows(app: Flask, chat: str = CHAT) -> list[Any]:
    services = app.extensions[EXTENSION_KEY]
    with transaction(services.db) as session:
        contact = services.conversations.contacts.find(session, "telegram", chat)
        assert contact is not None
        return [m for m in message_log.log_of(session, contact.id) if m.direction == "out"]


def contact_of(app: Flask, chat: str = CHAT) -> Any:
    return app.extensions[EXTENSION_KEY].conversations.transcript("telegram", chat).contact


def test_worker_sends_a_queued_question_with_buttons(
    app: Flask, worker: TelegramOutbox, clock: Clock, bot_api: FakeBotAPI
) -> None:
    queue_survey(app, clock)
    report = worker.run_until_idle()
    assert (report.sent, report.failed) == (1, 0)
    sent = bot_api.calls_to("sendMessage")
    assert len(sent) == 1 and sent[0]["text"].startswith("Hei! Kaarinan kirjasto")
    assert [b["callback_data"] for b in sent[0]["reply_markup"]["inline_keyboard"][0]] == [
        f"overall:{i}" for i in range(1, 6)
    ]
    (row,) = outbox_rows(app)
    assert row.status == "sent" and row.provider_id == f"{CHAT}:1001"


def test_worker_blocked_marks_unreachable_and_stops(
    app: Flask, worker: TelegramOutbox, clock: Clock, bot_api: FakeBotAPI
) -> None:
    bot_api.block_chat(CHAT)
    queue_survey(app, clock)
    report = worker.run_until_idle()
    assert (report.sent, report.failed) == (0, 1)
    (row,) = outbox_rows(app)
    assert (row.status, row.error_code) == ("failed", "403")
    assert contact_of(app).unreachable_reason.startswith("telegram 403")
    queue_survey(app, clock)  # a later survey is not even tried
    calls = len(bot_api.calls)
    assert worker.run_until_idle().skipped == 1
    assert len(bot_api.calls) == calls


def test_worker_waits_exactly_retry_after(app: Flask, clock: Clock, bot_api: FakeBotAPI) -> None:
    services = app.extensions[EXTENSION_KEY]
    waits: list[float] = []
    limiter = RateLimiter(per_second=10_000, chat_interval=0.0,
                          clock=lambda: clock.now.timestamp(), sleep=waits.append)  # fmt: skip
    with TelegramSender(bot_api.token, bot_api.base_url, limiter=limiter, timeout=5) as client:
        worker = TelegramOutbox(services.db, client, services.conversations.contacts, clock=clock)
        bot_api.fail_next("sendMessage", "error_429_retry_after")
        queue_survey(app, clock)
        assert worker.run_once().retried == 1
        (row,) = outbox_rows(app)
        assert (row.status, row.error_code) == ("queued", "429")
        clock.now += timedelta(seconds=16.9)
        assert worker.run_once().claimed == 0  # not due before retry_after has passed
        clock.now += timedelta(seconds=0.1)
        assert worker.run_once().sent == 1
        assert all(wait < 0.01 for wait in waits)  # due exactly when the chat is free again
        (row,) = outbox_rows(app)
        assert row.status == "sent"


def test_worker_network_error_retries_later(app: Flask, clock: Clock, bot_api: FakeBotAPI) -> None:
    services = app.extensions[EXTENSION_KEY]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = TelegramSender(bot_api.token, f"http://127.0.0.1:{port}", limiter=fast_limiter(),
                          timeout=2)  # fmt: skip
    try:
        worker = TelegramOutbox(services.db, dead, services.conversations.contacts, clock=clock)
        queue_survey(app, clock)
        assert worker.run_once().retried == 1
        (row,) = outbox_rows(app)
        assert (row.status, row.error_code) == ("queued", "network")
        assert contact_of(app).unreachable_reason is None
    finally:
        dead.close()


def test_clock_hook_uses_one_sender_per_process(
    app: Flask, clock: Clock, bot_api: FakeBotAPI
) -> None:
    services = app.extensions[EXTENSION_KEY]
    services.use_telegram_sender(
        TelegramSender(bot_api.token, bot_api.base_url, limiter=fast_limiter())
    )
    queue_survey(app, clock)
    first = services.telegram_outbox()
    second = services.telegram_outbox()
    assert first is not None and first.run_once().sent == 1
    assert first is not None and second is not None and first.sender is second.sender
