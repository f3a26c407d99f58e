"""Sending through the Telegram Bot API with python-telegram-bot's ``Bot``.

python-telegram-bot is asyncio-based; palaute's workers are plain threads. A
``TelegramSender`` therefore owns ONE event loop, running for the sender's whole life in
its own daemon thread ("telegram-bot-loop"); ``send`` and ``call`` hand coroutines to
it with ``asyncio.run_coroutine_threadsafe`` and wait for the result. No loop is ever
made per message or per request, and the HTTP connection pool is reused. The Flask
webhook never uses this class: it answers Telegram inside the webhook response.

Errors are typed by what a retry can do:

* ``RetryableSendError``: network failures, timeouts, Telegram 5xx and 429 flood control.
  For 429, ``retry_after`` holds exactly the seconds Telegram asked for
  (``parameters.retry_after``); the outbox waits that long, not a back-off guess.
* ``PermanentSendError``: retrying the same request cannot help. ``contact_effect``
  is UNREACHABLE for 403 (the person blocked the bot, deleted their account, or never started
  it) and 400 "chat not found": the outbox marks the contact and stops sending to it.

Limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
about 30 messages per second overall and 1 per second per chat. ``RateLimiter`` spaces
the calls of this process; a 429 also holds back the chat (or, for a global flood
limit, every chat) for ``retry_after`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardMarkup, Message
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from bot.messages import Outgoing
from channels.base import (
    ContactEffect,
    PermanentSendError,
    RetryableSendError,
    SendError,
    Sent,
)
from channels.telegram import CHANNEL
from channels.telegram.keyboards import send_message_params

T = TypeVar("T")

DEFAULT_API_BASE_URL = "https://api.telegram.org"


@dataclass(frozen=True)
class SendResult(Sent):
    """What Telegram accepted: ``provider_id`` is ``"<chat_id>:<message_id>"`` (message ids
    are unique per chat only)."""

    message_id: int
    chat_id: str


def provider_id(chat_id: str | int, message_id: int) -> str:
    return f"{chat_id}:{message_id}"


class FloodControl(TelegramError):
    """429 with ``parameters.retry_after``, read before python-telegram-bot's ``RetryAfter``
    (whose ``retry_after`` attribute warns about a type change on every use)."""

    def __init__(self, seconds: float, description: str) -> None:
        super().__init__(description)
        self.seconds = seconds


class _Request(HTTPXRequest):
    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(*args, **kwargs)
        if code == 429:
            try:
                data = json.loads(payload)
            except ValueError:
                data = {}
            retry = (data.get("parameters") or {}).get("retry_after")
            if isinstance(retry, int | float) and not isinstance(retry, bool):
                raise FloodControl(
                    float(retry), str(data.get("description") or "Too Many Requests")
                )
        return code, payload


def classify(error: TelegramError) -> SendError:
    """A python-telegram-bot exception as a typed, retry-aware error."""
    text = error.message
    if isinstance(error, FloodControl):
        return RetryableSendError(f"flood control: {text}", code="429", retry_after=error.seconds)
    if isinstance(error, RetryAfter):
        # The private timedelta: the public attribute warns about its coming type change.
        seconds = error._retry_after.total_seconds()
        return RetryableSendError(
            f"flood control: retry after {seconds:g} s", code="429", retry_after=seconds
        )
    if isinstance(error, Forbidden):
        return PermanentSendError(text, code="403", contact_effect=ContactEffect.UNREACHABLE)
    if isinstance(error, BadRequest):
        lowered = text.lower()
        if "chat not found" in lowered or "user not found" in lowered:
            return PermanentSendError(
                text, code="400_chat_not_found", contact_effect=ContactEffect.UNREACHABLE
            )
        return PermanentSendError(text, code="400")
    if isinstance(error, ChatMigrated):
        return PermanentSendError(f"chat migrated to {error.new_chat_id}", code="chat_migrated")
    if isinstance(error, InvalidToken):
        # Fixable by the operator (TELEGRAM_BOT_TOKEN); the message itself is fine.
        return RetryableSendError(
            f"Telegram refused the bot token ({text}): check TELEGRAM_BOT_TOKEN", code="token"
        )
    if isinstance(error, TimedOut):
        return RetryableSendError(f"timed out: {text}", code="timeout", maybe_sent=True)
    if isinstance(error, Conflict | NetworkError):
        return RetryableSendError(f"network: {text}", code="network")
    return RetryableSendError(text, code="telegram")


class RateLimiter:
    """Spaces calls: ``per_second`` overall and ``chat_interval`` seconds per chat."""

    def __init__(
        self,
        per_second: float = 30.0,
        chat_interval: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.chat_interval = chat_interval
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._next_any = 0.0
        self._next_chat: dict[str, float] = {}

    def reserve(self, chat: str | None) -> float:
        """Book the next free time for ``chat`` and return how long to wait for it."""
        with self._lock:
            now = self.clock()
            # The overall slot is taken first, so a chat that must wait (1/s, or a 429)
            # never holds up the other chats.
            at = max(now, self._next_any)
            self._next_any = at + self.interval
            if chat is not None:
                at = max(at, self._next_chat.get(chat, 0.0))
                self._next_chat[chat] = at + self.chat_interval
                if len(self._next_chat) > 10_000:  # forget chats whose slot has passed
                    self._next_chat = {k: v for k, v in self._next_chat.items() if v > now}
            return at - now

    def wait(self, chat: str | None) -> None:
        delay = self.reserve(chat)
        if delay > 0:
            self.sleep(delay)

    def hold(self, chat: str | None, seconds: float) -> None:
        """Nothing goes to ``chat`` (None: to anyone) for ``seconds`` (after a 429)."""
        with self._lock:
            until = self.clock() + seconds
            if chat is None:
                self._next_any = max(self._next_any, until)
            else:
                self._next_chat[chat] = max(self._next_chat.get(chat, 0.0), until)


class _LoopThread:
    """One asyncio loop in one daemon thread, for the life of the sender."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="telegram-bot-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


# The Bot API methods palaute calls, by their Bot API name -> python-telegram-bot's.
METHODS = {
    "sendMessage": "send_message",
    "editMessageText": "edit_message_text",
    "answerCallbackQuery": "answer_callback_query",
    "setWebhook": "set_webhook",
    "deleteWebhook": "delete_webhook",
    "getWebhookInfo": "get_webhook_info",
    "setMyCommands": "set_my_commands",
    "getMe": "get_me",
}


async def _invoke(bot: Bot, method: str, params: Mapping[str, Any]) -> Any:
    """Call ``method`` with Bot API-shaped ``params`` (as channels.telegram renders them)."""
    name = METHODS.get(method)
    if name is None:
        raise ValueError(f"Bot API method {method!r} is not used by palaute ({sorted(METHODS)})")
    kwargs = dict(params)
    markup = kwargs.pop("reply_markup", None)
    if markup and markup.get("inline_keyboard"):
        kwargs["reply_markup"] = InlineKeyboardMarkup.de_json(markup, bot)
    if "commands" in kwargs:
        kwargs["commands"] = [(c["command"], c["description"]) for c in kwargs["commands"]]
    return await getattr(bot, name)(**kwargs)


class TelegramSender:
    """Bot API calls for the outbox worker and the CLI (never for a web request)."""

    channel = CHANNEL

    def __init__(
        self,
        token: str,
        api_base_url: str = DEFAULT_API_BASE_URL,
        *,
        limiter: RateLimiter | None = None,
        timeout: float = 15.0,
        pool_size: int = 8,
    ) -> None:
        if not token:
            raise ValueError("TELEGRAM_BOT_TOKEN is empty: get one from @BotFather")
        self.token = token
        self.api_base_url = api_base_url.rstrip("/")
        self.limiter = limiter or RateLimiter()
        self.timeout = timeout
        self.pool_size = pool_size
        self._loop: _LoopThread | None = None
        self._bot: Bot | None = None
        self._lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------

    def _ensure(self) -> tuple[_LoopThread, Bot]:
        with self._lock:
            if self._loop is None or self._bot is None:
                loop = _LoopThread()

                async def make() -> Bot:
                    request = _Request(
                        connection_pool_size=self.pool_size,
                        read_timeout=self.timeout,
                        write_timeout=self.timeout,
                        connect_timeout=self.timeout,
                        pool_timeout=self.timeout,
                    )
                    bot = Bot(self.token, base_url=f"{self.api_base_url}/bot", request=request)
                    await bot.request.initialize()  # no getMe: sending must not need it
                    return bot

                self._bot = loop.run(make(), self.timeout)
                self._loop = loop
            return self._loop, self._bot

    def close(self) -> None:
        with self._lock:
            loop, bot = self._loop, self._bot
            self._loop = self._bot = None
        if loop is not None and bot is not None:
            try:
                loop.run(bot.request.shutdown(), self.timeout)
            finally:
                loop.stop()

    def __enter__(self) -> TelegramSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def loop_thread(self) -> threading.Thread | None:
        return self._loop.thread if self._loop is not None else None

    # --- calls -------------------------------------------------------------------------

    def call(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        chat: str | None = None,
        rate_limited: bool = True,
    ) -> Any:
        """One Bot API method; raises ``SendError``. ``chat`` is used for rate limiting."""
        loop, bot = self._ensure()
        if rate_limited:
            self.limiter.wait(chat)
        try:
            return loop.run(_invoke(bot, method, params), self.timeout * 2)
        except (FloodControl, RetryAfter) as exc:
            error = classify(exc)
            # A 429 for a chat holds that chat; without one it is the bot's global limit.
            self.limiter.hold(chat, error.retry_after or 0.0)
            raise error from exc
        except TelegramError as exc:
            raise classify(exc) from exc
        except FutureTimeout as exc:
            raise RetryableSendError(
                f"no answer from Telegram within {self.timeout * 2:g} s",
                code="timeout",
                maybe_sent=True,
            ) from exc

    def send_outgoing(
        self, address: str, message: Outgoing, *, status_callback: str | None = None
    ) -> SendResult:
        """``OutboxSender``: the Bot API has no status callbacks, so ``status_callback`` is
        not used."""
        return self.send(address, message)

    def send(self, chat_id: str, message: Outgoing) -> SendResult:
        """Send one outgoing message (with its inline keyboard) to a chat."""
        params = send_message_params(message, chat_id)
        sent: Message = self.call("sendMessage", params, chat=str(chat_id))
        return SendResult(
            provider_id=provider_id(chat_id, sent.message_id),
            message_id=sent.message_id,
            chat_id=str(chat_id),
        )
