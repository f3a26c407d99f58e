"""`palaute telegram set-webhook` / `info` against the fake Bot API."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fakes.telegram_api import FakeBotAPI
from palaute.commands.telegram import telegram


@pytest.fixture
def bot_api(bot_api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch) -> FakeBotAPI:
    """The shared fake Bot API, with the settings `palaute telegram` reads from the environment."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", bot_api.token)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", bot_api.base_url)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "hook-secret_123")
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", bot_api.username)
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://palaute.example.fi/")
    return bot_api


def test_set_webhook_registers_secret_updates_and_commands(bot_api: FakeBotAPI) -> None:
    result = CliRunner().invoke(telegram, ["set-webhook"])
    assert result.exit_code == 0, result.output
    assert "https://palaute.example.fi/webhooks/telegram" in result.output
    assert bot_api.webhook["url"] == "https://palaute.example.fi/webhooks/telegram"
    assert bot_api.webhook["secret_token"] == "hook-secret_123"
    assert bot_api.webhook["allowed_updates"] == ["message", "callback_query", "my_chat_member"]
    commands = bot_api.calls_to("setMyCommands")
    assert [c.get("language_code") for c in commands] == [None, "fi", "sv"]
    assert {"command": "stop", "description": "Lopeta kyselyt"} in commands[1]["commands"]


def test_info_shows_the_webhook(bot_api: FakeBotAPI) -> None:
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
    bot_api: FakeBotAPI,
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
    assert not bot_api.webhook


def test_api_errors_are_reported(bot_api: FakeBotAPI) -> None:
    bot_api.fail_next("getMe", "error_429_retry_after")
    result = CliRunner().invoke(telegram, ["info"])
    assert result.exit_code != 0
    assert "getMe failed: flood control" in result.output


def test_worker_once_sends_what_is_queued(
    bot_api: FakeBotAPI, db_url: str, monkeypatch: pytest.MonkeyPatch
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
    (sent,) = bot_api.calls_to("sendMessage")
    assert sent["text"].startswith("Miten asiointi sujui tänään?")
    assert len(sent["reply_markup"]["inline_keyboard"]) == 4
