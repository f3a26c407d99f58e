"""``palaute telegram ...``: register the webhook, show its status, run the sender.

    palaute telegram set-webhook https://palaute.example.fi   # PUBLIC_BASE_URL by default
    palaute telegram info
    palaute telegram worker [--once]

``set-webhook`` sends TELEGRAM_WEBHOOK_SECRET as ``secret_token`` (Telegram then puts it
in the X-Telegram-Bot-Api-Secret-Token header of every update) and only the update types
palaute reads as ``allowed_updates``; it also registers the /start, /stop, /help and
/language commands with short descriptions in Finnish, Swedish and English.
"""

from __future__ import annotations

import time
from typing import Any

import click

from channels.base import SendError
from channels.telegram.sender import TelegramSender
from palaute.config import Settings

WEBHOOK_PATH = "/webhooks/telegram"
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")

COMMAND_DESCRIPTIONS: dict[str | None, list[tuple[str, str]]] = {
    None: [
        ("start", "Start a survey"),
        ("language", "Choose the language"),
        ("help", "Help"),
        ("stop", "Stop receiving surveys"),
    ],
    "fi": [
        ("start", "Aloita kysely"),
        ("language", "Valitse kieli"),
        ("help", "Ohjeet"),
        ("stop", "Lopeta kyselyt"),
    ],
    "sv": [
        ("start", "Starta en enkät"),
        ("language", "Välj språk"),
        ("help", "Hjälp"),
        ("stop", "Sluta få enkäter"),
    ],
}


def _sender(settings: Settings) -> TelegramSender:
    if not settings.telegram_bot_token:
        raise click.ClickException("TELEGRAM_BOT_TOKEN is not set (get one from @BotFather).")
    return TelegramSender(settings.telegram_bot_token, settings.telegram_api_base_url)


def _call(sender: TelegramSender, method: str, params: dict[str, Any]) -> Any:
    try:
        return sender.call(method, params, rate_limited=False)
    except SendError as error:
        hint = " (try again)" if error.retryable else ""
        raise click.ClickException(f"{method} failed: {error}{hint}") from error


@click.group()
def telegram() -> None:
    """The Telegram bot: webhook registration and the sending worker."""


@telegram.command("set-webhook")
@click.argument("base_url", required=False)
@click.option("--drop-pending", is_flag=True, help="Discard updates Telegram has queued.")
@click.option("--max-connections", default=40, show_default=True, type=click.IntRange(1, 100))
def set_webhook(base_url: str | None, drop_pending: bool, max_connections: int) -> None:
    """Point Telegram at BASE_URL/webhooks/telegram (default: PUBLIC_BASE_URL)."""
    settings = Settings()
    base = (base_url or settings.public_base_url or "").rstrip("/")
    if not base:
        raise click.ClickException("give the public HTTPS address, or set PUBLIC_BASE_URL.")
    if not base.startswith("https://"):
        raise click.ClickException(f"{base}: Telegram only calls HTTPS webhooks.")
    if not settings.telegram_webhook_secret:
        raise click.ClickException(
            "TELEGRAM_WEBHOOK_SECRET is not set: the webhook refuses every update without it. "
            "Use 1-256 characters A-Z, a-z, 0-9, _ and -, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
        )
    url = base + WEBHOOK_PATH
    with _sender(settings) as sender:
        _call(
            sender,
            "setWebhook",
            {
                "url": url,
                "secret_token": settings.telegram_webhook_secret,
                "allowed_updates": list(ALLOWED_UPDATES),
                "max_connections": max_connections,
                "drop_pending_updates": drop_pending,
            },
        )
        for language, commands in COMMAND_DESCRIPTIONS.items():
            params: dict[str, Any] = {
                "commands": [{"command": c, "description": d} for c, d in commands]
            }
            if language is not None:
                params["language_code"] = language
            _call(sender, "setMyCommands", params)
    click.echo(f"Webhook set: {url}")
    click.echo(f"  updates: {', '.join(ALLOWED_UPDATES)}; secret token: set")


@telegram.command("info")
def info() -> None:
    """Show the bot and its webhook status as Telegram sees them."""
    settings = Settings()
    with _sender(settings) as sender:
        me = _call(sender, "getMe", {})
        hook = _call(sender, "getWebhookInfo", {})
    click.echo(f"Bot: @{me.username} (id {me.id})")
    if settings.telegram_bot_username and settings.telegram_bot_username.lstrip("@") != (
        me.username
    ):
        click.echo(
            f"  warning: TELEGRAM_BOT_USERNAME is {settings.telegram_bot_username!r}; "
            "QR codes would point at the wrong bot"
        )
    click.echo(f"Webhook: {hook.url or '(none: updates are not delivered)'}")
    click.echo(f"  pending updates: {hook.pending_update_count}")
    if hook.allowed_updates is not None:
        click.echo(f"  allowed updates: {', '.join(hook.allowed_updates)}")
    if hook.max_connections:
        click.echo(f"  max connections: {hook.max_connections}")
    if hook.last_error_message:
        click.echo(f"  last error: {hook.last_error_message} (at {hook.last_error_date})")


@telegram.command("worker")
@click.option("--once", is_flag=True, help="Send everything due now, then stop.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between looks at the outbox.",
)
def worker(once: bool, interval: float) -> None:
    """Send queued Telegram messages and button answers (palaute clock does it too)."""
    from palaute.services import build_services

    settings = Settings()
    services = build_services(settings)
    try:
        outbox = services.telegram_outbox()
        if outbox is None:
            raise click.ClickException("TELEGRAM_BOT_TOKEN is not set.")
        while True:
            report = outbox.run_until_idle(settings.clock_batch_size)
            if report.claimed or report.calls or once:
                click.echo(f"telegram: {report}")
            for error in report.errors:
                click.echo(f"  {error}", err=True)
            if once:
                return
            time.sleep(interval)
    finally:
        services.close()
