"""A fake Twilio REST API on 127.0.0.1, speaking the real Messages shapes.

    with FakeTwilioAPI() as fake:
        sender = TwilioSender(fake.account_sid, fake.auth_token, from_number=...,
                              base_url=fake.base_url)
        fake.fail_next(429, retry_after=3)      # the next create answers 429 + Retry-After
        fake.fail_for("+358401111111", 21610)   # every send to this number answers 21610
        fake.drop_next()                        # accept the next message, then hang up

It records every request (``fake.requests``) and every message it accepted
(``fake.messages``), answers ``GET .../Messages.json`` (list, newest first, filters To/From)
and ``GET .../Messages/{sid}.json``, and checks HTTP basic auth like Twilio does.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes.loopback import LoopbackServer

# The copies kept with the tests (tests/data/README.md): the suite runs from any checkout.
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "twilio"

ACCOUNT_SID = "AC6ae32eaeb19b4d6974b27e9e2e7fc789"
AUTH_TOKEN = "f83c94efeb60ca3230786755d73556fd"

# Twilio's documented error texts for the codes the tests use.
ERROR_TEXTS = {
    20429: "Too Many Requests",
    21211: "The 'To' number is not a valid phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    20500: "Internal Server Error",
    20003: "Authenticate",
}


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@functools.cache
def _send_shape() -> dict[str, Any]:
    """The fixture a created message is shaped after (read once; callers copy it)."""
    shape: dict[str, Any] = load_fixture("send_message_response.json")
    return shape


_REASONS = {code.value: code.phrase for code in HTTPStatus}


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    query: dict[str, str]
    auth: tuple[str, str] | None
    status: int = 0
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class _Failure:
    status: int
    code: int | None
    retry_after: str | None = None
    body: str | None = None


@dataclass
class FakeTwilioAPI:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    requests: list[Recorded] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._next: deque[_Failure | str] = deque()
        self._per_number: dict[str, _Failure] = {}
        self._server: LoopbackServer | None = None

    # --- scripting ----------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        code: int | None = None,
        *,
        retry_after: str | float | None = None,
        times: int = 1,
        body: str | None = None,
    ) -> None:
        """The next ``times`` message creations answer ``status`` with Twilio's error body."""
        if code is None:
            code = 20429 if status == 429 else (20500 if status >= 500 else None)
        ra = None if retry_after is None else str(retry_after)
        with self._lock:
            for _ in range(times):
                self._next.append(_Failure(status, code, ra, body))

    def fail_for(self, number: str, code: int, status: int = 400) -> None:
        """Every creation to ``number`` answers with error ``code`` (e.g. 21610)."""
        with self._lock:
            self._per_number[number] = _Failure(status, code)

    def drop_next(self) -> None:
        """Accept (store) the next message, then close the connection without answering:
        the sender cannot know whether it went out."""
        with self._lock:
            self._next.append("drop")

    def creates(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("Messages.json")]

    def sent_to(self, number: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["to"] == number]

    # --- server -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return self._server.base_url

    def start(self) -> FakeTwilioAPI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the SDK's requests Session reuses it
            # Answers are one write, but the request line and headers arrive in pieces:
            # without TCP_NODELAY a reply can wait ~40 ms for the client's delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_GET(self) -> None:
                fake._handle(self, "GET")

        self._server = LoopbackServer(Handler, poll_interval=0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeTwilioAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- request handling ---------------------------------------------------------------
    def _send_json(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        extra: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps(payload).encode()
        # Status line, headers and body in one write (one TCP segment for small answers).
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
        head.append("Content-Type: application/json; charset=utf-8")
        head.append(f"Content-Length: {len(body)}")
        head.append(f"Date: {h.date_time_string()}")
        head.extend(f"{key}: {value}" for key, value in (extra or {}).items())
        h.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def _error(self, h: BaseHTTPRequestHandler, failure: _Failure) -> None:
        if failure.body is not None:
            raw = failure.body.encode()
            h.send_response(failure.status)
            h.send_header("Content-Type", "text/html")
            h.send_header("Content-Length", str(len(raw)))
            h.end_headers()
            h.wfile.write(raw)
            return
        code = failure.code or failure.status
        payload = {
            "code": code,
            "message": ERROR_TEXTS.get(code, "Error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": failure.status,
        }
        extra = {"Retry-After": failure.retry_after} if failure.retry_after else None
        self._send_json(h, failure.status, payload, extra)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length).decode("utf-8") if length else ""
        form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        auth = None
        header = h.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            auth = (user, password)
        record = Recorded(method, parts.path, form, query, auth)
        with self._lock:
            self.requests.append(record)
        prefix = f"/2010-04-01/Accounts/{self.account_sid}/Messages"
        if auth != (self.account_sid, self.auth_token):
            record.status = 401
            self._error(h, _Failure(401, 20003))
            return
        if method == "POST" and parts.path == prefix + ".json":
            self._create(h, form, record)
        elif method == "GET" and parts.path == prefix + ".json":
            record.status = 200
            self._list(h, query)
        elif method == "GET" and parts.path.startswith(prefix + "/"):
            sid = parts.path[len(prefix) + 1 :].removesuffix(".json")
            found = [m for m in self.messages if m["sid"] == sid]
            if found:
                record.status = 200
                self._send_json(h, 200, found[0])
            else:
                record.status = 404
                self._error(h, _Failure(404, 20404))
        else:
            record.status = 404
            self._error(h, _Failure(404, 20404))

    def _create(self, h: BaseHTTPRequestHandler, form: dict[str, str], record: Recorded) -> None:
        to = form.get("To", "")
        with self._lock:
            scripted = self._next.popleft() if self._next else None
            per_number = self._per_number.get(to)
        if isinstance(scripted, _Failure):
            record.status = scripted.status
            self._error(h, scripted)
            return
        if per_number is not None:
            record.status = per_number.status
            self._error(h, per_number)
            return
        if not to.startswith("+") or not form.get("Body"):
            record.status = 400
            self._error(h, _Failure(400, 21211 if not to.startswith("+") else 21602))
            return
        message = self._message(form)
        with self._lock:
            self.messages.append(message)
        record.status = 201
        if scripted == "drop":
            h.close_connection = True
            h.connection.shutdown(2)  # the request went through; the answer never comes
            return
        self._send_json(h, 201, message)

    def _message(self, form: dict[str, str]) -> dict[str, Any]:
        shape = dict(_send_shape())
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC).replace(microsecond=0), usegmt=False)
        now = now.replace("-0000", "+0000")
        body = form.get("Body", "")
        service = form.get("MessagingServiceSid")
        shape.update(
            {
                "body": body,
                "num_segments": str(_segments(body)),
                "from": form.get("From") or None,
                "to": form["To"],
                "date_created": now,
                "date_updated": now,
                "sid": sid,
                "status": "accepted" if service else "queued",
                "messaging_service_sid": service,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
                "account_sid": self.account_sid,
                "subresource_uris": {
                    "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
                },
                "status_callback": form.get("StatusCallback"),
            }
        )
        return shape

    def _list(self, h: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        with self._lock:
            found = list(reversed(self.messages))
        if "To" in query:
            found = [m for m in found if m["to"] == query["To"]]
        if "From" in query:
            found = [m for m in found if m["from"] == query["From"]]
        size = int(query.get("PageSize", "50"))
        page = {
            "messages": [{k: v for k, v in m.items() if k != "status_callback"} for m in found][
                :size
            ],
            "end": min(size, len(found)) - 1,
            "first_page_uri": "",
            "next_page_uri": None,
            "page": 0,
            "page_size": size,
            "previous_page_uri": None,
            "start": 0,
            "uri": "",
        }
        self._send_json(h, 200, page)

    # --- status callbacks ---------------------------------------------------------------
    def status_form(self, sid: str, status: str, error_code: int | None = None) -> dict[str, str]:
        """The form Twilio POSTs to a message's StatusCallback (fixture field order)."""
        message = next(m for m in self.messages if m["sid"] == sid)
        form: dict[str, str] = {}
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        form.update(
            {
                "SmsSid": sid,
                "SmsStatus": status,
                "MessageStatus": status,
                "To": message["to"],
                "MessageSid": sid,
                "AccountSid": self.account_sid,
                "From": message["from"] or "",
                "ApiVersion": "2010-04-01",
            }
        )
        if message.get("messaging_service_sid"):
            form["MessagingServiceSid"] = message["messaging_service_sid"]
        if status in ("delivered", "undelivered"):
            form["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
        return form


def _segments(body: str) -> int:
    gsm = all(ord(c) < 128 or c in "äöåÄÖÅéÉüÜ£¥èùìòÇØøÆæß" for c in body)
    single, multi = (160, 153) if gsm else (70, 67)
    units = len(body) if gsm else len(body.encode("utf-16-le")) // 2
    return 1 if units <= single else -(-units // multi)
