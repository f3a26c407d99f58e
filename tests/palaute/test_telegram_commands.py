"""`palaute telegram set-webhook` / `info` against the fake Bot API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from fakes.telegram_api import FakeBotAPI
from palaute.commands.telegram import telegram


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as server:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", server.token)
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", server.base_url)
        monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "hook-secret_123")
        monkeypatch.setenv("TELEGRAM_BOT_USERNAME", server.username)
        monkeypatch.setenv("PUBLIC_BASE_URL", "https://palaute.example.fi/")
        yield server


def test_set_webhook_registers_secret_updates_and_commands(fake: FakeBotAPI) -> None:
    result = CliRunner().invoke(telegram, ["set-webhook"])
    assert result.exit_code == 0, result.output
    assert "https://palaute.example.fi/webhooks/telegram" in result.output
    assert fake.webhook["url"] == "https://palaute.example.fi/webhooks/telegram"
    assert fake.webhook["secret_token"] == "hook-secret_123"
    assert fake.webhook["allowed_updates"] == ["message", "callback_query", "my_chat_member"]
    commands = fake.calls_to("setMyCommands")
    assert [c.get("language_code") for c in commands] == [None, "fi", "sv"]
    assert {"command": "stop", "description": "Lopeta kyselyt"} in commands[1]["commands"]


def test_info_shows_the_webhook(fake: FakeBotAPI) -> None:
    CliRunner().invoke(telegram, ["set-webhook", "https://kysely.example.fi"])
    result = CliRunner().invoke(telegram, ["info"])
    assert result.exit_code == 0, result.output
    assert "Bot: @kirjastokysely_bot" in result.output
    assert "Webhook: https://kysely.example.fi/webhooks/telegram" in result.output
    assert "allowed updates: message, callback_query, my_chat_member" in result.output


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["set-webhook", "http://insecure.example.fi"], {}, "only calls HTTPS"),
        (["set-webhook"], {"TELEGRAM_WEBHOOK_SECRET": ""}, "TELEGRAM_WEBHOOK_SECRET is not set"),
        (["info"], {"TELEGRAM_BOT_TOKEN": ""}, "TELEGRAM_BOT_TOKEN is not set"),
    ],
)
def test_clear_errors(
    fake: FakeBotAPI,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(telegram, args)
    assert result.exit_code != 0
    assert message in result.output
    assert not fake.webhook


def test_api_errors_are_reported(fake: FakeBotAPI) -> None:
    fake.fail_next("getMe", "error_429_retry_after")
    result = CliRunner().invoke(telegram, ["info"])
    assert result.exit_code != 0
    assert "getMe failed: flood control" in result.output


def test_worker_once_sends_what_is_queued(
    fake: FakeBotAPI, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from palaute.config import Settings
    from palaute.services import build_services

    monkeypatch.setenv("DATABASE_URL", db_url)
    services = build_services(Settings())
    try:
        services.conversations.start("telegram", "6012345678", "quick-poll", now=datetime.now(UTC))
    finally:
        services.close()
    result = CliRunner().invoke(telegram, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent 1" in result.output
    (sent,) = fake.calls_to("sendMessage")
    assert sent["text"].startswith("Miten asiointi sujui tänään?")
    assert len(sent["reply_markup"]["inline_keyboard"]) == 4
