"""Sending to Telegram: the sender against the fake Bot API (the outbox worker that uses it:
tests/service/test_telegram_outbox.py)."""

from __future__ import annotations

import socket
import threading

import pytest

from bot.messages import Outgoing
from channels.telegram.sender import (
    PermanentSendError,
    RateLimiter,
    RetryableSendError,
    TelegramSender,
)
from fakes.telegram_api import FakeBotAPI
from tests.channels.telegram_support import CHAT, QUESTION, fast_limiter

# --- the sender ----------------------------------------------------------------------------


def test_send_renders_the_keyboard_and_returns_a_unique_provider_id(
    telegram_sender: TelegramSender, bot_api: FakeBotAPI
) -> None:
    first = telegram_sender.send(CHAT, QUESTION)
    second = telegram_sender.send("5123456789", QUESTION)
    assert first.provider_id == f"{CHAT}:{first.message_id}"
    assert first.provider_id != second.provider_id
    params = bot_api.calls_to("sendMessage")[0]
    assert params["text"] == "Kuinka tyytyväinen olit?"
    assert params["reply_markup"]["inline_keyboard"][0][4] == {
        "text": "5",
        "callback_data": "overall:5",
    }


def test_blocked_user_is_permanent_and_unreachable(
    telegram_sender: TelegramSender, bot_api: FakeBotAPI
) -> None:
    bot_api.fail_next("sendMessage", "error_403_blocked")
    with pytest.raises(PermanentSendError) as info:
        telegram_sender.send(CHAT, QUESTION)
    assert info.value.contact_unreachable and info.value.code == "403"
    assert "blocked" in info.value.reason


def test_chat_not_found_is_permanent_and_unreachable(
    telegram_sender: TelegramSender, bot_api: FakeBotAPI
) -> None:
    bot_api.fail_next("sendMessage", "error_400_chat_not_found")
    with pytest.raises(PermanentSendError) as info:
        telegram_sender.send(CHAT, QUESTION)
    assert info.value.contact_unreachable and info.value.code == "400_chat_not_found"


def test_other_bad_requests_are_permanent_but_keep_the_contact(
    telegram_sender: TelegramSender, bot_api: FakeBotAPI
) -> None:
    with pytest.raises(PermanentSendError) as info:
        telegram_sender.send(CHAT, Outgoing("", "fi"))  # an empty text
    assert not info.value.contact_unreachable and info.value.code == "400"


def test_flood_control_gives_the_exact_wait_and_holds_the_chat(bot_api: FakeBotAPI) -> None:
    now = [100.0]
    waits: list[float] = []
    limiter = RateLimiter(per_second=10_000, chat_interval=0.0, clock=lambda: now[0],
                          sleep=waits.append)  # fmt: skip
    with TelegramSender(bot_api.token, bot_api.base_url, limiter=limiter, timeout=5) as client:
        bot_api.fail_next("sendMessage", "error_429_retry_after")
        with pytest.raises(RetryableSendError) as info:
            client.send(CHAT, QUESTION)
        assert info.value.retry_after == 17.0 and info.value.code == "429"
        client.send("5123456789", QUESTION)  # another chat is not held
        assert all(wait < 0.01 for wait in waits)
        client.send(CHAT, QUESTION)
        assert waits[-1] == pytest.approx(17.0, abs=0.01)


def test_network_failure_is_retryable(bot_api: FakeBotAPI) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = TelegramSender(bot_api.token, f"http://127.0.0.1:{port}", limiter=fast_limiter())
    with dead as client, pytest.raises(RetryableSendError) as info:
        client.send(CHAT, QUESTION)
    assert info.value.code == "network"


def test_wrong_token_is_retryable_with_a_clear_reason(bot_api: FakeBotAPI) -> None:
    wrong = TelegramSender("999:wrong", bot_api.base_url, limiter=fast_limiter())
    with wrong as client, pytest.raises(RetryableSendError) as info:
        client.send(CHAT, QUESTION)
    assert "TELEGRAM_BOT_TOKEN" in info.value.reason


def test_one_long_lived_event_loop_for_every_call(
    telegram_sender: TelegramSender, bot_api: FakeBotAPI
) -> None:
    telegram_sender.send(CHAT, QUESTION)
    loop_thread = telegram_sender.loop_thread
    assert loop_thread is not None and loop_thread.is_alive()
    workers = [
        threading.Thread(target=telegram_sender.send, args=(CHAT, QUESTION)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for _ in range(5):
        telegram_sender.send(CHAT, QUESTION)
    assert telegram_sender.loop_thread is loop_thread
    loops = [t for t in threading.enumerate() if t.name == "telegram-bot-loop"]
    assert loops == [loop_thread]
    assert len(bot_api.calls_to("sendMessage")) == 10
    telegram_sender.close()
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
