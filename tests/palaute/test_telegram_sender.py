"""Sending to Telegram: the sender against the fake Bot API, and the outbox worker's outcomes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from bot.messages import Choice, Outgoing
from channels.telegram.sender import (
    PermanentSendError,
    RateLimiter,
    RetryableSendError,
    TelegramSender,
)
from fakes.telegram_api import FakeBotAPI
from palaute.app import create_app
from palaute.web import EXTENSION_KEY
from service.telegram_outbox import TelegramOutbox
from storage import messages as message_log
from storage.db import transaction

REPO_FLOWS = Path(__file__).resolve().parents[2] / "flows"
CHAT = "6012345678"
QUESTION = Outgoing(
    "Kuinka tyytyväinen olit?",
    "fi",
    step_id="overall",
    choices=tuple(Choice(str(i), str(i)) for i in range(1, 6)),
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 14, 9, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as server:
        yield server


def fast_limiter() -> RateLimiter:
    return RateLimiter(per_second=10_000, chat_interval=0.0)


@pytest.fixture
def sender(fake: FakeBotAPI) -> Iterator[TelegramSender]:
    with TelegramSender(fake.token, fake.base_url, limiter=fast_limiter(), timeout=5) as client:
        yield client


# --- the sender ----------------------------------------------------------------------------


def test_send_renders_the_keyboard_and_returns_a_unique_provider_id(
    sender: TelegramSender, fake: FakeBotAPI
) -> None:
    first = sender.send(CHAT, QUESTION)
    second = sender.send("5123456789", QUESTION)
    assert first.provider_id == f"{CHAT}:{first.message_id}"
    assert first.provider_id != second.provider_id
    params = fake.calls_to("sendMessage")[0]
    assert params["text"] == "Kuinka tyytyväinen olit?"
    assert params["reply_markup"]["inline_keyboard"][0][4] == {
        "text": "5",
        "callback_data": "overall:5",
    }


def test_blocked_user_is_permanent_and_unreachable(
    sender: TelegramSender, fake: FakeBotAPI
) -> None:
    fake.fail_next("sendMessage", "error_403_blocked")
    with pytest.raises(PermanentSendError) as info:
        sender.send(CHAT, QUESTION)
    assert info.value.contact_unreachable and info.value.code == "403"
    assert "blocked" in info.value.reason


def test_chat_not_found_is_permanent_and_unreachable(
    sender: TelegramSender, fake: FakeBotAPI
) -> None:
    fake.fail_next("sendMessage", "error_400_chat_not_found")
    with pytest.raises(PermanentSendError) as info:
        sender.send(CHAT, QUESTION)
    assert info.value.contact_unreachable and info.value.code == "400_chat_not_found"


def test_other_bad_requests_are_permanent_but_keep_the_contact(
    sender: TelegramSender, fake: FakeBotAPI
) -> None:
    with pytest.raises(PermanentSendError) as info:
        sender.send(CHAT, Outgoing("", "fi"))  # an empty text
    assert not info.value.contact_unreachable and info.value.code == "400"


def test_flood_control_gives_the_exact_wait_and_holds_the_chat(fake: FakeBotAPI) -> None:
    now = [100.0]
    waits: list[float] = []
    limiter = RateLimiter(per_second=10_000, chat_interval=0.0, clock=lambda: now[0],
                          sleep=waits.append)  # fmt: skip
    with TelegramSender(fake.token, fake.base_url, limiter=limiter, timeout=5) as client:
        fake.fail_next("sendMessage", "error_429_retry_after")
        with pytest.raises(RetryableSendError) as info:
            client.send(CHAT, QUESTION)
        assert info.value.retry_after == 17.0 and info.value.code == "429"
        client.send("5123456789", QUESTION)  # another chat is not held
        assert all(wait < 0.01 for wait in waits)
        client.send(CHAT, QUESTION)
        assert waits[-1] == pytest.approx(17.0, abs=0.01)


def test_network_failure_is_retryable(fake: FakeBotAPI) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = TelegramSender(fake.token, f"http://127.0.0.1:{port}", limiter=fast_limiter())
    with dead as client, pytest.raises(RetryableSendError) as info:
        client.send(CHAT, QUESTION)
    assert info.value.code == "network"


def test_wrong_token_is_retryable_with_a_clear_reason(fake: FakeBotAPI) -> None:
    wrong = TelegramSender("999:wrong", fake.base_url, limiter=fast_limiter())
    with wrong as client, pytest.raises(RetryableSendError) as info:
        client.send(CHAT, QUESTION)
    assert "TELEGRAM_BOT_TOKEN" in info.value.reason


def test_one_long_lived_event_loop_for_every_call(sender: TelegramSender, fake: FakeBotAPI) -> None:
    sender.send(CHAT, QUESTION)
    loop_thread = sender.loop_thread
    assert loop_thread is not None and loop_thread.is_alive()
    workers = [threading.Thread(target=sender.send, args=(CHAT, QUESTION)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for _ in range(5):
        sender.send(CHAT, QUESTION)
    assert sender.loop_thread is loop_thread
    loops = [t for t in threading.enumerate() if t.name == "telegram-bot-loop"]
    assert loops == [loop_thread]
    assert len(fake.calls_to("sendMessage")) == 10
    sender.close()
    assert not loop_thread.is_alive()


def test_rate_limiter_spaces_chats_and_overall() -> None:
    now = [0.0]
    limiter = RateLimiter(per_second=30, chat_interval=1.0, clock=lambda: now[0])
    waits = [limiter.reserve("a") for _ in range(3)]
    assert waits == pytest.approx([0.0, 1.0, 2.0])  # 1 per second in one chat
    others = [limiter.reserve(f"chat{i}") for i in range(30)]
    # 30 per second overall: 30 more chats fill the next second (after the 3 booked).
    assert others[0] == pytest.approx(3 / 30)
    assert others[-1] == pytest.approx(32 / 30)
    limiter.hold("b", 17)
    assert limiter.reserve("b") == pytest.approx(17.0)


# --- the worker ----------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(db_url: str, clock: Clock, fake: FakeBotAPI) -> Iterator[Flask]:
    application = create_app(
        {
            "TESTING": True,
            "CLOCK": clock,
            "DATABASE_URL": db_url,
            "FLOWS_DIR": REPO_FLOWS,
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
        }
    )
    yield application
    application.extensions[EXTENSION_KEY].close()


@pytest.fixture
def worker(app: Flask, sender: TelegramSender, clock: Clock) -> TelegramOutbox:
    services = app.extensions[EXTENSION_KEY]
    return TelegramOutbox(services.db, sender, services.conversations.contacts, clock=clock)


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
    app: Flask, worker: TelegramOutbox, clock: Clock, fake: FakeBotAPI
) -> None:
    queue_survey(app, clock)
    report = worker.run_until_idle()
    assert (report.sent, report.failed) == (1, 0)
    sent = fake.calls_to("sendMessage")
    assert len(sent) == 1 and sent[0]["text"].startswith("Hei! Kaarinan kirjasto")
    assert [b["callback_data"] for b in sent[0]["reply_markup"]["inline_keyboard"][0]] == [
        f"overall:{i}" for i in range(1, 6)
    ]
    (row,) = outbox_rows(app)
    assert row.status == "sent" and row.provider_id == f"{CHAT}:1001"


def test_worker_blocked_marks_unreachable_and_stops(
    app: Flask, worker: TelegramOutbox, clock: Clock, fake: FakeBotAPI
) -> None:
    fake.block_chat(CHAT)
    queue_survey(app, clock)
    report = worker.run_until_idle()
    assert (report.sent, report.failed) == (0, 1)
    (row,) = outbox_rows(app)
    assert (row.status, row.error_code) == ("failed", "403")
    assert contact_of(app).unreachable_reason.startswith("telegram 403")
    queue_survey(app, clock)  # a later survey is not even tried
    calls = len(fake.calls)
    assert worker.run_until_idle().skipped == 1
    assert len(fake.calls) == calls


def test_worker_waits_exactly_retry_after(app: Flask, clock: Clock, fake: FakeBotAPI) -> None:
    services = app.extensions[EXTENSION_KEY]
    waits: list[float] = []
    limiter = RateLimiter(per_second=10_000, chat_interval=0.0,
                          clock=lambda: clock.now.timestamp(), sleep=waits.append)  # fmt: skip
    with TelegramSender(fake.token, fake.base_url, limiter=limiter, timeout=5) as client:
        worker = TelegramOutbox(services.db, client, services.conversations.contacts, clock=clock)
        fake.fail_next("sendMessage", "error_429_retry_after")
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


def test_worker_network_error_retries_later(app: Flask, clock: Clock, fake: FakeBotAPI) -> None:
    services = app.extensions[EXTENSION_KEY]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = TelegramSender(fake.token, f"http://127.0.0.1:{port}", limiter=fast_limiter(),
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


def test_clock_hook_uses_one_sender_per_process(app: Flask, clock: Clock, fake: FakeBotAPI) -> None:
    services = app.extensions[EXTENSION_KEY]
    services.use_telegram_sender(TelegramSender(fake.token, fake.base_url, limiter=fast_limiter()))
    queue_survey(app, clock)
    first = services.telegram_outbox()
    second = services.telegram_outbox()
    assert first is not None and first.run_once().sent == 1
    assert first is not None and second is not None and first.sender is second.sender
