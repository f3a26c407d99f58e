"""POST /webhooks/telegram: whole conversations over the real update shapes.

Each test runs the app on a fresh database (SQLite and PostgreSQL) with the example flows
in flows/, posts Bot API updates built from tests/data/telegram/, and lets the Telegram
worker send queued messages and button calls to the loopback fake Bot API.
"""

from __future__ import annotations

import copy
import itertools
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from channels.telegram.sender import RateLimiter, TelegramSender
from fakes.telegram_api import FakeBotAPI, load_fixture
from palaute.app import create_app
from palaute.web import EXTENSION_KEY
from service.telegram_outbox import TelegramOutbox
from storage import messages as message_log
from storage import telegram as calls_repo
from storage.db import transaction
from storage.errors import RetryableStorageError
from tests.clock import Clock

REPO_FLOWS = Path(__file__).resolve().parents[2] / "flows"
SECRET = "s3cret-Token_for-tests"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
UPDATE_FIXTURES = [
    "message_text",
    "message_text_sv",
    "message_no_language_code",
    "message_start_deeplink",
    "callback_query",
    "edited_message",
    "message_photo",
    "message_sticker",
    "message_voice",
    "message_location",
    "my_chat_member_kicked",
    "message_group",
]


_update_ids = itertools.count(500_000_000)
_message_ids = itertools.count(100)


@dataclass
class Chat:
    """One person in a private chat with the bot: posts updates, collects what the bot says."""

    app: Flask
    bot_api: FakeBotAPI
    worker: TelegramOutbox
    chat_id: int = 6012345678
    language_code: str | None = "fi"
    received: list[dict[str, Any]] = field(default_factory=list)  # sendMessage params
    _seen: int = 0

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    def user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.chat_id, "is_bot": False, "first_name": "Aino"}
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def post(self, update: dict[str, Any], secret: str | None = SECRET) -> Any:
        headers = {HEADER: secret} if secret is not None else {}
        return self.client.post("/webhooks/telegram", json=update, headers=headers)

    def deliver(self, update: dict[str, Any]) -> dict[str, Any] | None:
        """Post an update; returns the method call in the response body (None: empty)."""
        response = self.post(update)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json(silent=True)
        if body is not None and body.get("method") == "sendMessage":
            assert body["chat_id"] == self.chat_id
            self.received.append(body)
        self.flush()
        return body

    def flush(self) -> None:
        self.worker.run_until_idle()
        sent = self.bot_api.calls_to("sendMessage")
        for params in sent[self._seen :]:
            if str(params["chat_id"]) == str(self.chat_id):
                self.received.append(params)
        self._seen = len(sent)

    def message(self, text: str, update_id: int | None = None) -> dict[str, Any]:
        update = load_fixture("message_text")
        update["update_id"] = update_id or next(_update_ids)
        message = update["message"]
        message["message_id"] = next(_message_ids)
        message["from"] = self.user()
        message["chat"] = {"id": self.chat_id, "first_name": "Aino", "type": "private"}
        message["text"] = text
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [{"offset": 0, "length": length, "type": "bot_command"}]
        return update

    def send(self, text: str) -> dict[str, Any] | None:
        return self.deliver(self.message(text))

    def press_update(self, shown: dict[str, Any], value: str) -> dict[str, Any]:
        """A press of the button with option ``value`` under the bot message ``shown``."""
        buttons = [b for row in shown["reply_markup"]["inline_keyboard"] for b in row]
        matches = [b for b in buttons if b["callback_data"].partition(":")[2] == value]
        assert matches, f"no button {value!r} in {buttons}"
        update = load_fixture("callback_query")
        update["update_id"] = next(_update_ids)
        query = update["callback_query"]
        query["id"] = str(next(_update_ids) * 7)
        query["from"] = self.user()
        query["message"]["message_id"] = next(_message_ids)
        query["message"]["chat"] = {"id": self.chat_id, "first_name": "Aino", "type": "private"}
        query["message"]["text"] = shown["text"]
        query["message"]["reply_markup"] = shown["reply_markup"]
        query["data"] = matches[0]["callback_data"]
        return update

    def press(self, value: str, shown: dict[str, Any] | None = None) -> dict[str, Any] | None:
        return self.deliver(self.press_update(shown or self.last(), value))

    def last(self) -> dict[str, Any]:
        assert self.received, "the bot has said nothing yet"
        return self.received[-1]

    def texts(self) -> list[str]:
        return [str(m["text"]) for m in self.received]


# Tests whose behaviour cannot differ between databases run on SQLite only (the
# conversations, duplicates, races and blocking run on both).
sqlite_only = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


def services_of(app: Flask) -> Any:
    return app.extensions[EXTENSION_KEY]


def make_app(db_url: str, clock: Clock, bot_api: FakeBotAPI, flows: Path = REPO_FLOWS) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "CLOCK": clock,
            "DATABASE_URL": db_url,
            "FLOWS_DIR": flows,
            "TELEGRAM_BOT_TOKEN": bot_api.token,
            "TELEGRAM_BOT_USERNAME": bot_api.username,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_API_BASE_URL": bot_api.base_url,
        }
    )


@pytest.fixture
def app(db_url: str, clock: Clock, bot_api: FakeBotAPI) -> Iterator[Flask]:
    application = make_app(db_url, clock, bot_api)
    yield application
    services_of(application).close()


@pytest.fixture
def sender(bot_api: FakeBotAPI) -> Iterator[TelegramSender]:
    limiter = RateLimiter(per_second=10_000, chat_interval=0.0)
    with TelegramSender(bot_api.token, bot_api.base_url, limiter=limiter, timeout=5) as client:
        yield client


@pytest.fixture
def chat(app: Flask, bot_api: FakeBotAPI, sender: TelegramSender, clock: Clock) -> Chat:
    services = services_of(app)
    worker = TelegramOutbox(services.db, sender, services.conversations.contacts, clock=clock)
    return Chat(app, bot_api, worker)


def transcript(app: Flask, chat_id: int | str) -> Any:
    return services_of(app).conversations.transcript("telegram", str(chat_id))


def answers_of(app: Flask, chat_id: int | str) -> dict[str, Any]:
    return {a.step_id: a.value for a in transcript(app, chat_id).answers}


def keyboard_values(message: dict[str, Any]) -> list[str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [b["callback_data"].partition(":")[2] for row in rows for b in row]


# --- whole conversations -----------------------------------------------------------------


def test_library_visit_from_a_qr_code_with_buttons_and_typed_answers(
    chat: Chat, app: Flask, bot_api: FakeBotAPI
) -> None:
    body = chat.send("/start kirjasto_piikkio")
    assert body is not None and body["method"] == "sendMessage"
    assert body["text"].startswith("Hei! Kaarinan kirjasto kysyy")
    assert keyboard_values(body) == ["1", "2", "3", "4", "5"]

    question = chat.last()
    reply = chat.press("5")
    assert reply is not None and reply["text"].startswith("Kiva kuulla!")  # typed answer next
    # The worker answered the press and edited the question to show the choice.
    assert bot_api.calls_to("answerCallbackQuery")
    edit = bot_api.calls_to("editMessageText")[-1]
    assert edit["text"] == question["text"] + "\n\n✅ 5"
    assert "reply_markup" not in edit

    chat.send("Lasten satutunti oli ihana")
    assert keyboard_values(chat.last()) == ["borrowing", "reading", "event", "computer", "other"]
    labels = [b["text"] for row in chat.last()["reply_markup"]["inline_keyboard"] for b in row]
    assert labels[2] == "Tapahtuma"
    chat.press("event")
    chat.send("Kiitos!")
    assert chat.last()["text"].startswith("Kiitos palautteestasi!")

    record = transcript(app, chat.chat_id)
    assert record.run.status == "completed"
    assert record.run.service_point == "piikkio-library"
    assert answers_of(app, chat.chat_id) == {
        "overall": 5,
        "what_liked": "Lasten satutunti oli ihana",
        "visit_reason": "event",
        "comment": "Kiitos!",
    }
    assert all(a.service_point == "piikkio-library" for a in record.answers)


@sqlite_only
@pytest.mark.parametrize(
    ("code", "point"),
    [("kirjasto_kaarina", "kaarina-main-library"), ("kirjasto_piikkio", "piikkio-library")],
)
def test_deep_link_binds_the_service_point(chat: Chat, app: Flask, code: str, point: str) -> None:
    chat.send(f"/start {code}")
    run = transcript(app, chat.chat_id).run
    assert (run.flow_id, run.service_point, run.status) == ("library-visit", point, "active")


@pytest.mark.parametrize(
    ("code", "flow_id"),
    [
        ("kirjasto_kaarina", "library-visit"),
        ("terveysasema_kaarina", "health-centre-fft"),
        ("pikakysely", "quick-poll"),
    ],
)
def test_every_example_flow_runs_to_the_end(
    chat: Chat, app: Flask, code: str, flow_id: str
) -> None:
    """Press the first button of every question with buttons, type an answer otherwise."""
    chat.send(f"/start {code}")
    pressed = typed = 0
    for _ in range(20):
        run = transcript(app, chat.chat_id).run
        if run.status != "active":
            break
        values = keyboard_values(chat.last())
        if values:
            chat.press(values[0])
            pressed += 1
        else:
            chat.send("Ystävällinen palvelu")
            typed += 1
    record = transcript(app, chat.chat_id)
    assert (record.run.flow_id, record.run.status) == (flow_id, "completed")
    assert pressed >= 1 and typed >= 1
    assert len(record.answers) == pressed + typed
    assert chat.last()["text"].startswith("Kiitos")


@sqlite_only
def test_smiley_buttons_carry_faces_and_words(chat: Chat) -> None:
    body = chat.send("/start pikakysely")
    assert body is not None
    labels = [b["text"] for row in body["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == [
        "😞 Erittäin tyytymätön",
        "🙁 Tyytymätön",
        "🙂 Tyytyväinen",
        "😀 Erittäin tyytyväinen",
    ]
    assert [len(row) for row in body["reply_markup"]["inline_keyboard"]] == [1, 1, 1, 1]


@sqlite_only
def test_typed_answer_to_a_button_question(chat: Chat, app: Flask) -> None:
    chat.send("/start kirjasto_kaarina")
    chat.send("2")
    assert chat.last()["text"].startswith("Olemme pahoillamme")
    assert answers_of(app, chat.chat_id) == {"overall": 2}


@sqlite_only
def test_swedish_language_code_starts_in_swedish(chat: Chat) -> None:
    chat.language_code = "sv"
    body = chat.send("/start kirjasto_kaarina")
    assert body is not None and body["text"].startswith("Hej! S:t Karins bibliotek")


def test_a_deep_link_that_names_a_language_wins_over_the_remembered_one(
    db_url: str, clock: Clock, bot_api: FakeBotAPI, sender: TelegramSender, tmp_path: Path
) -> None:
    # A Swedish poster at the main library: the same desk, a code that names Swedish.
    flows = tmp_path / "flows"
    shutil.copytree(REPO_FLOWS, flows)
    library = flows / "library-visit.yaml"
    finnish_code = "    - code: kirjasto_piikkio\n"
    text = library.read_text(encoding="utf-8")
    assert finnish_code in text
    swedish_code = (
        "    - {code: bibliotek_kaarina, service_point: kaarina-main-library, language: sv}\n"
    )
    library.write_text(text.replace(finnish_code, swedish_code + finnish_code), encoding="utf-8")
    application = make_app(db_url, clock, bot_api, flows)
    try:
        services = services_of(application)
        worker = TelegramOutbox(services.db, sender, services.conversations.contacts, clock=clock)
        chat = Chat(application, bot_api, worker)  # Telegram says the user's app is in Finnish
        chat.send("/start kirjasto_kaarina")
        chat.send("4")  # answered in Finnish: the contact remembers Finnish
        body = chat.send("/start bibliotek_kaarina")
        assert body is not None and body["text"].startswith("Hej! S:t Karins bibliotek")
        run = transcript(application, chat.chat_id).run
        assert (run.language, run.service_point) == ("sv", "kaarina-main-library")
        chat.send("5")
        # A code that names no language: the remembered one (now Swedish), not the app's.
        body = chat.send("/start kirjasto_kaarina")
        assert body is not None and body["text"].startswith("Hej! S:t Karins bibliotek")
    finally:
        services_of(application).close()


def test_an_unmigrated_database_stores_nothing_so_acknowledges_nothing(
    empty_db_url: str,
    clock: Clock,
    bot_api: FakeBotAPI,
    sender: TelegramSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Like SMS: 500 with the reason logged once, so Telegram sends the update again."""
    application = make_app(empty_db_url, clock, bot_api)
    try:
        services = services_of(application)
        worker = TelegramOutbox(services.db, sender, services.conversations.contacts, clock=clock)
        chat = Chat(application, bot_api, worker)
        update = chat.message("/start kirjasto_kaarina")
        with caplog.at_level(logging.WARNING, logger="palaute.web"):
            response = chat.post(update)
        assert response.status_code == 500
        assert response.get_json() == {"error": "not stored; try again later"}
        [logged] = [r.getMessage() for r in caplog.records if r.name == "palaute.web"]
        assert logged.startswith(f"Telegram update {update['update_id']}: nothing stored")
        assert "run `palaute db upgrade`" in logged
    finally:
        services_of(application).close()


@sqlite_only
def test_plain_start_and_unknown_code_say_how_to_begin(chat: Chat) -> None:
    body = chat.send("/start")
    assert body is not None and "KIRJASTO" in body["text"]
    body = chat.send("/start ei_tallaista")
    assert body is not None and "Tätä koodia ei löytynyt" in body["text"]


@sqlite_only
def test_stop_opts_out_and_nothing_more_is_sent(chat: Chat, app: Flask) -> None:
    chat.send("/start kirjasto_kaarina")
    body = chat.send("/stop")
    assert body is not None and "Et saa enää kyselyitä" in body["text"]
    record = transcript(app, chat.chat_id)
    assert record.contact.opted_out
    assert record.run.status == "ended"
    assert chat.send("5") is None  # opted out: no reply at all


@sqlite_only
def test_language_command_offers_buttons_and_switches(chat: Chat, app: Flask) -> None:
    chat.send("/start kirjasto_kaarina")
    menu = chat.send("/language")
    assert menu is not None
    assert keyboard_values(menu) == ["FI", "SV", "EN"]
    chat.press("SV", menu)
    assert chat.last()["text"].startswith("Hej! S:t Karins bibliotek")
    assert transcript(app, chat.chat_id).run.language == "sv"


def test_stale_button_is_answered_and_records_nothing(
    chat: Chat, app: Flask, bot_api: FakeBotAPI
) -> None:
    chat.send("/start kirjasto_kaarina")
    first_question = chat.last()
    chat.send("4")  # typed: the buttons under the first question are still there
    stale = chat.press_update(first_question, "1")
    response = chat.post(stale)
    assert response.status_code == 200
    body = response.get_json()
    assert body == {
        "method": "answerCallbackQuery",
        "callback_query_id": stale["callback_query"]["id"],
        "text": "Tähän kysymykseen on jo vastattu.",
    }
    chat.flush()
    assert bot_api.calls_to("editMessageText")[-1]["text"] == first_question["text"]
    assert answers_of(app, chat.chat_id) == {"overall": 4}


@sqlite_only
def test_media_in_a_run_gets_a_text_please(chat: Chat) -> None:
    chat.send("/start kirjasto_kaarina")
    sticker = load_fixture("message_sticker")
    sticker["update_id"] = next(_update_ids)
    body = chat.deliver(sticker)
    assert body is not None
    assert body["text"] == "En voi lukea kuvia tai ääniviestejä. Vastaa tekstillä."


# --- security, duplicates, every fixture ----------------------------------------------------


@sqlite_only
@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET.upper()])
def test_wrong_or_missing_secret_is_refused_and_nothing_recorded(
    chat: Chat, app: Flask, secret: str | None
) -> None:
    response = chat.post(chat.message("/start kirjasto_kaarina"), secret=secret)
    assert response.status_code == 403
    assert transcript(app, chat.chat_id).contact is None


@sqlite_only
def test_webhook_without_a_configured_secret_refuses_everything(
    db_url: str, bot_api: FakeBotAPI, clock: Clock
) -> None:
    application = create_app(
        {"TESTING": True, "CLOCK": clock, "DATABASE_URL": db_url, "FLOWS_DIR": REPO_FLOWS,
         "TELEGRAM_WEBHOOK_SECRET": ""}
    )  # fmt: skip
    try:
        client = application.test_client()
        update = load_fixture("message_start_deeplink")
        for secret in ("", "anything"):
            response = client.post("/webhooks/telegram", json=update, headers={HEADER: secret})
            assert response.status_code == 403
    finally:
        services_of(application).close()


def test_duplicate_update_id_is_processed_once(chat: Chat, app: Flask) -> None:
    chat.send("/start kirjasto_kaarina")
    update = chat.message("3")
    first = chat.post(update).get_json()
    again = chat.post(update).get_json()
    assert first == again and first["text"].startswith("Kiva kuulla!")
    record = transcript(app, chat.chat_id)
    assert answers_of(app, chat.chat_id) == {"overall": 3}
    inbound = [m for m in record.messages if m.direction == "in"]
    assert [m.text for m in inbound] == ["/start kirjasto_kaarina", "3"]


def test_duplicate_button_press_queues_its_calls_once(chat: Chat, app: Flask) -> None:
    chat.send("/start kirjasto_kaarina")
    press = chat.press_update(chat.last(), "4")
    assert chat.post(press).status_code == 200
    assert chat.post(press).status_code == 200
    services = services_of(app)
    with transaction(services.db) as session:
        pending = calls_repo.pending_calls(session)
    assert [c.method for c in pending] == ["answerCallbackQuery", "editMessageText"]


def test_a_button_press_is_one_transaction(chat: Chat, app: Flask) -> None:
    """The press's check, its answer and its two Bot API calls commit together."""
    chat.send("/start kirjasto_kaarina")
    engine = services_of(app).db
    begun: list[int] = []

    def count(_connection: Any) -> None:
        begun.append(1)

    event.listen(engine, "begin", count)
    try:
        response = chat.post(chat.press_update(chat.last(), "4"))
    finally:
        event.remove(engine, "begin", count)
    assert response.status_code == 200
    assert response.get_json()["text"].startswith("Kiva kuulla!")
    assert len(begun) == 1
    assert answers_of(app, chat.chat_id) == {"overall": 4}
    with transaction(engine) as session:
        pending = calls_repo.pending_calls(session)
    assert [c.method for c in pending] == ["answerCallbackQuery", "editMessageText"]
    assert pending[1].params["text"].endswith("\n\n✅ 4")


@sqlite_only
def test_a_failed_press_stores_no_calls_and_its_redelivery_stores_them_once(
    chat: Chat, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat.send("/start kirjasto_kaarina")
    press = chat.press_update(chat.last(), "4")

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RetryableStorageError("the database went away")

    with monkeypatch.context() as patched:
        patched.setattr(message_log, "insert_inbound", broken)
        assert chat.post(press).status_code == 503
    services = services_of(app)
    with transaction(services.db) as session:
        assert calls_repo.pending_calls(session) == []
    assert answers_of(app, chat.chat_id) == {}

    assert chat.post(press).status_code == 200  # Telegram redelivers
    assert chat.post(press).status_code == 200  # ... and once more
    with transaction(services.db) as session:
        pending = calls_repo.pending_calls(session)
    assert [c.method for c in pending] == ["answerCallbackQuery", "editMessageText"]
    assert answers_of(app, chat.chat_id) == {"overall": 4}


@sqlite_only
def test_a_press_without_a_run_only_loses_its_buttons(chat: Chat, app: Flask) -> None:
    chat.send("/start kirjasto_kaarina")
    question = chat.last()
    chat.send("/stop")
    press = chat.press_update(question, "4")
    body = chat.post(press).get_json()
    assert body["method"] == "answerCallbackQuery"
    assert body["text"] == "Tähän kysymykseen on jo vastattu."
    chat.flush()
    assert chat.bot_api.calls_to("editMessageText")[-1]["text"] == question["text"]
    inbound = [m.text for m in transcript(app, chat.chat_id).messages if m.direction == "in"]
    assert inbound == ["/start kirjasto_kaarina", "/stop"]
    assert answers_of(app, chat.chat_id) == {}


@sqlite_only
def test_a_press_on_a_message_too_old_to_show_is_answered_without_an_edit(
    chat: Chat, app: Flask
) -> None:
    chat.send("/start kirjasto_kaarina")
    press = chat.press_update(chat.last(), "3")
    message = press["callback_query"]["message"]
    # An InaccessibleMessage: only the chat, the message id and date 0.
    press["callback_query"]["message"] = {
        "chat": message["chat"],
        "message_id": message["message_id"],
        "date": 0,
    }
    body = chat.post(press).get_json()
    assert body["text"].startswith("Kiva kuulla!")
    with transaction(services_of(app).db) as session:
        pending = calls_repo.pending_calls(session)
    assert [c.method for c in pending] == ["answerCallbackQuery"]
    chat.flush()
    assert chat.bot_api.calls_to("editMessageText") == []
    assert [c["callback_query_id"] for c in chat.bot_api.calls_to("answerCallbackQuery")] == [
        press["callback_query"]["id"]
    ]
    assert answers_of(app, chat.chat_id) == {"overall": 3}


@sqlite_only
@pytest.mark.parametrize("name", UPDATE_FIXTURES)
def test_every_fixture_is_handled_without_error(chat: Chat, app: Flask, name: str) -> None:
    update = load_fixture(name)
    response = chat.post(update)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json(silent=True)
    if name in ("message_group", "edited_message", "my_chat_member_kicked"):
        assert body is None
        chat_id = (update.get("message") or update.get("edited_message") or {}).get("chat", {})
        if chat_id:
            assert transcript(app, chat_id["id"]).contact is None
    else:
        assert body is not None
        assert body["method"] in ("sendMessage", "answerCallbackQuery")


def test_blocking_the_bot_marks_the_contact_unreachable(chat: Chat, app: Flask) -> None:
    chat.send("/start kirjasto_kaarina")
    kicked = load_fixture("my_chat_member_kicked")
    assert chat.post(kicked).status_code == 200
    assert transcript(app, chat.chat_id).contact.unreachable_reason == "telegram: blocked the bot"
    chat.send("/start kirjasto_kaarina")  # they came back
    assert transcript(app, chat.chat_id).contact.unreachable_reason is None


@sqlite_only
def test_malformed_body_is_a_400(chat: Chat) -> None:
    response = chat.client.post("/webhooks/telegram", data="not json", headers={HEADER: SECRET})
    assert response.status_code == 400


def test_one_chat_at_a_time_under_concurrent_updates(chat: Chat, app: Flask) -> None:
    """Two different updates of one chat racing: both recorded, in some order, no error."""
    import threading

    chat.send("/start kirjasto_kaarina")
    updates = [chat.message("5"), chat.message("Hyvä")]
    results: list[int] = []

    def post(update: dict[str, Any]) -> None:
        results.append(app.test_client().post(
            "/webhooks/telegram", json=update, headers={HEADER: SECRET}).status_code)  # fmt: skip

    threads = [threading.Thread(target=post, args=(u,)) for u in updates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200, 200]
    inbound = [m for m in transcript(app, chat.chat_id).messages if m.direction == "in"]
    assert len(inbound) == 3


@sqlite_only
def test_first_reply_inline_rest_through_the_worker(chat: Chat, app: Flask) -> None:
    chat.send("/start kirjasto_kaarina")
    update = copy.deepcopy(chat.message("/help"))
    body = chat.post(update).get_json()
    assert body["method"] == "sendMessage"
    assert "Lopettaaksesi vastaa LOPETA" in body["text"]
    before = len(chat.bot_api.calls_to("sendMessage"))
    chat.flush()
    sent = chat.bot_api.calls_to("sendMessage")[before:]
    assert [m["text"][:28] for m in sent] == ["Hei! Kaarinan kirjasto kysyy"]
