"""A fake Telegram Bot API server on 127.0.0.1, speaking the real shapes.

Point ``python-telegram-bot``'s ``Bot(base_url=...)`` (or any HTTP client) at
``fake.base_url`` (``http://127.0.0.1:<port>``); methods are served at
``/bot<TOKEN>/<method>`` with the real ``{"ok": true, "result": ...}`` and
``{"ok": false, "error_code": ..., "description": ...}`` envelopes. Parameters are read
from JSON bodies, query strings and form bodies (python-telegram-bot posts forms whose
nested values are JSON strings).

Errors are switchable, using the bodies in tests/data/telegram/:

* ``fake.fail_next("sendMessage", "error_429_retry_after")`` - the next call fails;
* ``fake.block_chat(chat_id)`` - every send to that chat answers 403 "bot was blocked";
* ``fake.forget_chat(chat_id)`` - every send answers 400 "chat not found".

``fake.calls`` records every call as ``(method, params)``; ``fake.sent(chat_id)`` lists
the texts sent to a chat.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fakes.loopback import LoopbackServer

DATA_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "telegram"
BOT_ID = 7712345601


def load_fixture(name: str) -> dict[str, Any]:
    with (DATA_DIR / f"{name.removesuffix('.json')}.json").open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@dataclass
class FakeBotAPI:
    token: str = "123456:TEST-token"
    username: str = "kirjastokysely_bot"
    clock: Callable[[], float] = time.time
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    _failures: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    _blocked: set[str] = field(default_factory=set)
    _unknown: set[str] = field(default_factory=set)
    _next_message_id: int = 1000
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> FakeBotAPI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                fake._serve(self)

            def do_GET(self) -> None:
                fake._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = LoopbackServer(Handler, poll_interval=0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeBotAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return self._server.base_url

    # --- switches ----------------------------------------------------------------------
    def fail_next(self, method: str, fixture: str | dict[str, Any], times: int = 1) -> None:
        body = load_fixture(fixture) if isinstance(fixture, str) else fixture
        with self._lock:
            self._failures.setdefault(method, []).extend([(body["error_code"], body)] * times)

    def block_chat(self, chat_id: int | str) -> None:
        self._blocked.add(str(chat_id))

    def forget_chat(self, chat_id: int | str) -> None:
        self._unknown.add(str(chat_id))

    # --- inspection --------------------------------------------------------------------
    def calls_to(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [params for name, params in self.calls if name == method]

    def sent(self, chat_id: int | str) -> list[str]:
        return [
            str(params["text"])
            for params in self.calls_to("sendMessage")
            if str(params.get("chat_id")) == str(chat_id)
        ]

    # --- the API -----------------------------------------------------------------------
    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        prefix = f"/bot{self.token}/"
        if not url.path.startswith("/bot"):
            status, body = 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        elif not url.path.startswith(prefix):
            status, body = 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        else:
            method = url.path[len(prefix) :]
            params = _read_params(url.query, raw, request.headers.get("Content-Type", ""))
            status, body = self._call(method, params)
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _call(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls.append((method, params))
            queued = self._failures.get(method)
            if queued:
                return queued.pop(0)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        chat = str(params.get("chat_id", ""))
        if chat and chat in self._blocked:
            return 403, load_fixture("error_403_blocked")
        if chat and chat in self._unknown:
            return 400, load_fixture("error_400_chat_not_found")
        try:
            result = handler(params)
        except _BadRequest as exc:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}
        return 200, {"ok": True, "result": result}

    def _bot_user(self) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Kirjastokysely",
                "username": self.username}  # fmt: skip

    def _message(self, params: dict[str, Any], message_id: int) -> dict[str, Any]:
        chat_id = _require(params, "chat_id")
        text = _require(params, "text")
        if len(str(text)) > 4096:
            raise _BadRequest("message is too long")
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": self._bot_user(),
            "chat": {"id": int(chat_id), "first_name": "Aino", "type": "private"},
            "date": int(self.clock()),
            "text": str(text),
        }
        markup = params.get("reply_markup")
        if markup:
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if not button.get("text"):
                        raise _BadRequest("inline keyboard button text is empty")
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(data.encode()) <= 64:
                        raise _BadRequest("BUTTON_DATA_INVALID")
            if markup.get("inline_keyboard"):
                message["reply_markup"] = markup
        return message

    def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**self._bot_user(), "can_join_groups": False,
                "can_read_all_group_messages": False, "supports_inline_queries": False,
                "can_connect_to_business": False, "has_main_web_app": False}  # fmt: skip

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._next_message_id += 1
            message_id = self._next_message_id
        return self._message(params, message_id)

    def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        message_id = int(_require(params, "message_id"))
        message = self._message(params, message_id)
        message["edit_date"] = int(self.clock())
        return message

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        _require(params, "callback_query_id")
        return True

    def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        url = str(_require(params, "url"))
        if url and not url.startswith("https://"):
            raise _BadRequest("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "allowed_updates": params.get("allowed_updates"),
            "max_connections": params.get("max_connections", 40),
            "drop_pending_updates": params.get("drop_pending_updates", False),
        }
        return True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {}
        return True

    def _m_setMyCommands(self, params: dict[str, Any]) -> bool:
        _require(params, "commands")
        return True

    def _m_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if self.webhook.get("url"):
            info["max_connections"] = self.webhook.get("max_connections", 40)
            info["ip_address"] = "203.0.113.10"
            if self.webhook.get("allowed_updates") is not None:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info


class _BadRequest(Exception):
    pass


def _require(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise _BadRequest(f"{name} is empty" if name != "chat_id" else "chat_id is empty")
    return value


def _read_params(query: str, raw: bytes, content_type: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(parse_qsl(query))
    if raw:
        if content_type.startswith("application/json"):
            params.update(json.loads(raw))
        elif content_type.startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(raw.decode()))
    for key, value in list(params.items()):
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params
