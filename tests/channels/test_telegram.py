"""channels/telegram/: every fixture update parsed, and Outgoing rendered into Bot API calls."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot import keywords
from bot.messages import Choice, InboundKind, Outgoing
from channels.base import Handled, Ignored, InboundResult, Rejected
from channels.telegram import keyboards, updates

DATA = Path(__file__).resolve().parent.parent / "data" / "telegram"


def fixture(name: str) -> dict[str, Any]:
    with (DATA / f"{name}.json").open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def chat_message(payload: Any) -> updates.ChatMessage:
    """The chat message an update is handled as (the outcome must be one)."""
    result = updates.parse_update(payload)
    assert isinstance(result, Handled) and isinstance(result.value, updates.ChatMessage), result
    return result.value


def outcome_of(result: InboundResult[updates.TelegramUpdate]) -> tuple[str, int, str | None]:
    """What became of an update, its update_id and chat, as the CASES table writes them."""
    match result:
        case Handled(updates.ChatMessage() as handled):
            return "message", handled.update_id, handled.chat_id
        case Handled(updates.ChatReachability() as change):
            name = "unblocked" if change.reachable else "blocked"
            return name, change.update_id, change.chat_id
        case Ignored() as ignored:
            assert ignored.reason and ignored.request_id is not None
            return "ignored", int(ignored.request_id), ignored.address
        case Rejected() as rejected:
            raise AssertionError(f"rejected: {rejected.reason}")


# name, outcome, chat, inbound kind, inbound text, language hint, start code
CASES = [
    ("message_text", "message", "6012345678", InboundKind.TEXT,
     "Aukioloajat ovat hyvät, mutta uusia lehtiä voisi olla enemmän.", "fi", None),
    ("message_text_sv", "message", "5123456789", InboundKind.TEXT,
     "Jag tycker att biblioteket är trivsamt, men det är ofta fullt på lördagar.", "sv", None),
    ("message_no_language_code", "message", "7098765432", InboundKind.TEXT, "4", None, None),
    ("message_start_deeplink", "message", "6012345678", InboundKind.START,
     "/start kirjasto_kaarina_1", "fi", "kirjasto_kaarina_1"),
    ("callback_query", "message", "6012345678", InboundKind.BUTTON, "4", "fi", None),
    ("message_photo", "message", "6012345678", InboundKind.MEDIA,
     "Lainausautomaatin jono tänä aamuna", "fi", None),
    ("message_sticker", "message", "6012345678", InboundKind.MEDIA, "", "fi", None),
    ("message_voice", "message", "5123456789", InboundKind.MEDIA, "", "sv", None),
    ("message_location", "message", "6012345678", InboundKind.MEDIA, "", "fi", None),
    ("my_chat_member_kicked", "blocked", "6012345678", None, None, None, None),
    ("message_group", "ignored", "-4123456789", None, None, None, None),
    ("edited_message", "ignored", "6012345678", None, None, None, None),
]  # fmt: skip

UPDATE_FIXTURES = {p.stem for p in DATA.glob("*.json")} - {
    "send_message_response",
    "error_400_chat_not_found",
    "error_403_blocked",
    "error_429_retry_after",
}


def test_every_update_fixture_has_a_case() -> None:
    assert {case[0] for case in CASES} == UPDATE_FIXTURES


@pytest.mark.parametrize(("name", "outcome", "chat", "kind", "text", "hint", "code"), CASES)
def test_parse_fixture(
    name: str,
    outcome: str,
    chat: str,
    kind: InboundKind | None,
    text: str | None,
    hint: str | None,
    code: str | None,
) -> None:
    payload = fixture(name)
    result = updates.parse_update(payload)
    assert outcome_of(result) == (outcome, payload["update_id"], chat)
    if kind is None:
        assert not isinstance(result, Handled) or not isinstance(result.value, updates.ChatMessage)
        return
    inbound = chat_message(payload).inbound
    assert inbound.channel == "telegram"
    assert inbound.address == chat
    assert inbound.kind == kind
    assert inbound.text == text
    assert inbound.language_hint == hint
    assert inbound.start_code == code
    assert inbound.provider_id is not None
    assert inbound.provider_id.startswith(f"{payload['update_id']}:")
    assert chat_message(payload).inbound == inbound  # the same update, the same key


def test_callback_press_carries_step_label_and_message() -> None:
    parsed = chat_message(fixture("callback_query"))
    press = parsed.callback
    assert press is not None
    assert press.query_id == "2581743015993328104"
    assert (press.step_id, press.value, press.label) == ("q1", "4", "4")
    assert press.message_id == 413
    assert press.message_text.startswith("Kysymys 1/5")


def message_with_text(text: str, **changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(fixture("message_text"))
    payload["message"]["text"] = text
    payload["message"].update(changes)
    return payload


@pytest.mark.parametrize(
    ("text", "kind", "expected_text", "code"),
    [
        ("/start", InboundKind.START, "/start", None),
        ("/start@kirjastokysely_bot kirjasto_1", InboundKind.START, None, "kirjasto_1"),
        ("/start not a code!", InboundKind.START, None, None),
        ("/stop", InboundKind.TEXT, "/stop", None),
        ("/STOP@kirjastokysely_bot", InboundKind.TEXT, "/stop", None),
        ("/help", InboundKind.TEXT, "/help", None),
        ("/language", InboundKind.TEXT, "/language", None),
        ("/language sv", InboundKind.TEXT, "/language sv", None),
        ("/kysely@kirjastokysely_bot", InboundKind.TEXT, "/help", None),
        ("4", InboundKind.TEXT, "4", None),
        ("  kyllä ", InboundKind.TEXT, "  kyllä ", None),
    ],
)
def test_commands_in_private_chat(
    text: str, kind: InboundKind, expected_text: str | None, code: str | None
) -> None:
    parsed = chat_message(message_with_text(text))
    assert parsed.inbound.kind == kind
    if expected_text is not None:
        assert parsed.inbound.text == expected_text
    assert parsed.inbound.start_code == code


@pytest.mark.parametrize(
    ("payload", "reason_part"),
    [
        ({"update_id": 5, "channel_post": {"message_id": 1, "date": 1778749925,
          "chat": {"id": -1001, "type": "channel", "title": "Uutiset"}, "text": "hei"}},
         "channel post"),
        ({"update_id": 6, "inline_query": {"id": "1", "from": {"id": 1, "is_bot": False,
          "first_name": "A"}, "query": "x", "offset": ""}}, "inline_query"),
        ({"update_id": 7}, "empty"),
    ],
)  # fmt: skip
def test_other_updates_are_ignored(payload: dict[str, Any], reason_part: str) -> None:
    ignored = updates.parse_update(payload)
    assert isinstance(ignored, Ignored) and ignored.outcome == "ignored"
    assert reason_part in ignored.reason
    assert ignored.request_id == str(payload["update_id"])


def test_messages_from_bots_and_service_messages_are_ignored() -> None:
    from_bot = message_with_text("hei")
    from_bot["message"]["from"]["is_bot"] = True
    assert updates.parse_update(from_bot).outcome == "ignored"
    service = fixture("message_text")
    del service["message"]["text"]
    service["message"]["pinned_message"] = {"message_id": 1, "date": 0, "chat": {"id": 1,
                                            "type": "private"}}  # fmt: skip
    assert updates.parse_update(service).outcome == "ignored"


def test_unblocking_is_reported() -> None:
    payload = fixture("my_chat_member_kicked")
    member = payload["my_chat_member"]
    member["old_chat_member"], member["new_chat_member"] = (
        {**member["new_chat_member"]},
        {"user": member["old_chat_member"]["user"], "status": "member"},
    )
    assert outcome_of(updates.parse_update(payload)) == (
        "unblocked",
        payload["update_id"],
        "6012345678",
    )


@pytest.mark.parametrize(
    "body", [None, [], {"message": {}}, {"update_id": "1"}, {"update_id": True}]
)
def test_malformed_bodies_are_rejected(body: Any) -> None:
    rejected = updates.parse_update(body)
    assert isinstance(rejected, Rejected) and rejected.outcome == "rejected"
    assert (rejected.status, rejected.retryable) == (400, False)
    assert rejected.reason.startswith(f"{rejected.field}: ")


def _broken(path: str, value: Any) -> dict[str, Any]:
    """A fixture with the field at ``path`` ("fixture.key.key", None: removed) replaced."""
    name, *keys = path.split(".")
    payload = fixture(name)
    parent = payload
    for key in keys[:-1]:
        parent = parent[key]
    if value is None:
        del parent[keys[-1]]
    else:
        parent[keys[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("message_text.message", "hei"),
        ("message_text.message.chat", None),
        ("message_text.message.chat.id", "6012345678"),
        ("message_text.message.chat.type", None),
        ("message_text.message.message_id", None),
        ("message_text.message.from", ["Aino"]),
        ("message_text.message.from.is_bot", None),
        ("message_text.message.from.language_code", 7),
        ("message_text.message.text", 4),
        ("message_group.message.chat", None),
        ("callback_query.callback_query.id", None),
        ("callback_query.callback_query.from", None),
        ("callback_query.callback_query.data", 4),
        ("callback_query.callback_query.message.chat.id", None),
        ("my_chat_member_kicked.my_chat_member.new_chat_member", None),
        ("my_chat_member_kicked.my_chat_member.old_chat_member.status", None),
    ],
)
def test_fields_of_the_wrong_type_are_rejected(path: str, value: Any) -> None:
    rejected = updates.parse_update(_broken(path, value))
    assert isinstance(rejected, Rejected) and rejected.status == 400
    assert rejected.reason.startswith("body: not a Bot API Update (")


def test_fields_from_newer_bot_api_versions_are_accepted() -> None:
    payload = fixture("message_text")
    payload["message"]["reaction_of_the_future"] = {"emoji": "👍", "count": 3}
    payload["update_kind_of_the_future"] = 5
    assert chat_message(payload).inbound.text == fixture("message_text")["message"]["text"]


def test_press_on_a_message_too_old_to_show() -> None:
    """An InaccessibleMessage (date 0): the chat is known, the text and buttons are not."""
    payload = fixture("callback_query")
    message = payload["callback_query"]["message"]
    payload["callback_query"]["message"] = {
        "chat": message["chat"],
        "message_id": message["message_id"],
        "date": 0,
    }
    parsed = chat_message(payload)
    press = parsed.callback
    assert press is not None and parsed.chat_id == "6012345678"
    assert (press.message_id, press.message_text, press.label) == (413, "", None)
    assert (press.step_id, press.value) == ("q1", "4")
    assert keyboards.edit_chosen_params(press) is None
    assert parsed.inbound.kind == InboundKind.BUTTON


def test_press_without_its_message_is_read_from_the_user() -> None:
    payload = fixture("callback_query")
    del payload["callback_query"]["message"]
    parsed = chat_message(payload)
    assert parsed.chat_id == "6012345678"
    assert parsed.callback is not None and parsed.callback.message_id is None


def test_press_in_a_group_and_press_without_data_are_ignored() -> None:
    group = fixture("callback_query")
    group["callback_query"]["message"]["chat"] = {"id": -4123456789, "type": "group"}
    assert updates.parse_update(group).outcome == "ignored"
    no_data = fixture("callback_query")
    del no_data["callback_query"]["data"]
    ignored = updates.parse_update(no_data)
    assert isinstance(ignored, Ignored) and "without callback data" in ignored.reason


def test_empty_media_is_not_media() -> None:
    payload = fixture("message_photo")
    payload["message"]["photo"] = []
    del payload["message"]["caption"]
    ignored = updates.parse_update(payload)
    assert isinstance(ignored, Ignored) and ignored.reason == "service message without text"


@pytest.mark.parametrize(
    ("code", "hint"), [("fi", "fi"), ("en-US", "en"), ("pt-br", "pt"), ("", None), (None, None)]
)
def test_language_hint(code: str | None, hint: str | None) -> None:
    assert updates.language_hint(code) == hint


# --- rendering ---------------------------------------------------------------------------


def choices(*pairs: tuple[str, str]) -> tuple[Choice, ...]:
    return tuple(Choice(value=v, label=label) for v, label in pairs)


def test_scale_renders_one_row_of_numbers() -> None:
    out = Outgoing("Kuinka tyytyväinen olet?", "fi", step_id="q1",
                   choices=choices(*[(str(i), str(i)) for i in range(1, 6)]))  # fmt: skip
    params = keyboards.send_message_params(out, "6012345678")
    assert params["chat_id"] == 6012345678
    assert params["text"] == "Kuinka tyytyväinen olet?"
    rows = params["reply_markup"]["inline_keyboard"]
    assert [[b["callback_data"] for b in row] for row in rows] == [
        ["q1:1", "q1:2", "q1:3", "q1:4", "q1:5"]
    ]


def test_nps_renders_two_rows() -> None:
    out = Outgoing("Suosittelisitko?", "fi", step_id="nps",
                   choices=choices(*[(str(i), str(i)) for i in range(11)]))  # fmt: skip
    rows = keyboards.send_message_params(out, 1)["reply_markup"]["inline_keyboard"]
    assert [len(row) for row in rows] == [6, 5]
    assert rows[1][-1] == {"text": "10", "callback_data": "nps:10"}


def test_smiley_and_choice_labels_get_a_row_each_and_yes_no_shares_one() -> None:
    smiley = Outgoing("Miten onnistuimme?", "fi", step_id="s",
                      choices=choices(("1", "😞 Erittäin huono"), ("2", "🙁 Huono"),
                                      ("3", "😐 Ei hyvä eikä huono"), ("4", "🙂 Hyvä"),
                                      ("5", "😀 Erittäin hyvä")))  # fmt: skip
    rows = keyboards.send_message_params(smiley, 1)["reply_markup"]["inline_keyboard"]
    assert [len(row) for row in rows] == [1, 1, 1, 1, 1]
    assert rows[4][0]["text"] == "😀 Erittäin hyvä"
    yes_no = Outgoing("Löysitkö?", "fi", step_id="found",
                      choices=choices(("yes", "Kyllä"), ("no", "Ei")))  # fmt: skip
    rows = keyboards.send_message_params(yes_no, 1)["reply_markup"]["inline_keyboard"]
    assert rows == [[{"text": "Kyllä", "callback_data": "found:yes"},
                     {"text": "Ei", "callback_data": "found:no"}]]  # fmt: skip


def test_no_choices_means_no_keyboard() -> None:
    params = keyboards.send_message_params(Outgoing("Kiitos!", "fi"), "42")
    assert params == {"chat_id": 42, "text": "Kiitos!"}


def test_callback_data_stays_within_64_bytes_and_round_trips() -> None:
    long_step = "s" * 62
    data = keyboards.encode_callback_data(long_step, "yes")
    assert data == ":yes"
    assert keyboards.decode_callback_data(data) == (None, "yes")
    assert keyboards.encode_callback_data("q", "ä" * 40) is None
    assert keyboards.decode_callback_data("q2:lang:fi") == ("q2", "lang:fi")
    assert keyboards.decode_callback_data("plain") == (None, "plain")
    out = Outgoing("?", "fi", step_id="q", choices=choices(("ok", "OK"), ("ä" * 40, "Liian pitkä")))
    rows = keyboards.send_message_params(out, 1)["reply_markup"]["inline_keyboard"]
    assert [b["text"] for row in rows for b in row] == ["OK"]


def test_long_texts_are_cut_to_the_api_limit() -> None:
    params = keyboards.send_message_params(Outgoing("x" * 5000, "fi"), 1)
    assert len(params["text"]) == 4096


def test_chosen_answer_edit_and_callback_answer() -> None:
    press = chat_message(fixture("callback_query")).callback
    assert press is not None
    edit = keyboards.edit_chosen_params(press)
    assert edit is not None
    assert edit["chat_id"] == 6012345678
    assert edit["message_id"] == 413
    assert edit["text"].endswith("\n\n✅ 4")
    assert edit["text"].startswith("Kysymys 1/5")
    assert "reply_markup" not in edit  # editing without one removes the buttons
    assert keyboards.answer_callback_params(press) == {"callback_query_id": "2581743015993328104"}
    reply = keyboards.webhook_reply("answerCallbackQuery", keyboards.answer_callback_params(press))
    assert reply == {"method": "answerCallbackQuery", "callback_query_id": press.query_id}


def test_stale_press_toast_and_button_removal() -> None:
    press = chat_message(fixture("callback_query")).callback
    assert press is not None
    assert keyboards.answer_callback_params(press, keyboards.already_answered("fi")) == {
        "callback_query_id": press.query_id,
        "text": "Tähän kysymykseen on jo vastattu.",
    }
    assert "redan" in keyboards.already_answered("sv")
    assert keyboards.already_answered("so") == keyboards.already_answered("en")
    edit = keyboards.edit_chosen_params(press, chosen=False)
    assert edit is not None
    assert edit["text"] == press.message_text
    assert "reply_markup" not in edit


def test_deep_link() -> None:
    assert (
        keyboards.deep_link("@kirjastokysely_bot", "kirjasto_kaarina_1")
        == "https://t.me/kirjastokysely_bot?start=kirjasto_kaarina_1"
    )
    with pytest.raises(ValueError, match="start code"):
        keyboards.deep_link("kirjastokysely_bot", "ei käy")
    with pytest.raises(ValueError, match="TELEGRAM_BOT_USERNAME"):
        keyboards.deep_link("", "koodi")


def test_commands_reach_the_core_as_its_keywords() -> None:
    def text_of(command: str) -> str:
        return chat_message(message_with_text(command)).inbound.text

    assert keywords.is_opt_out(text_of("/stop"))
    assert keywords.is_help(text_of("/help@kirjastokysely_bot"))
    assert keywords.is_language_menu(text_of("/language"))


def test_menu_buttons_without_a_step_come_back_as_text() -> None:
    payload = fixture("callback_query")
    payload["callback_query"]["data"] = ":SV"
    inbound = chat_message(payload).inbound
    assert (inbound.kind, inbound.text) == (InboundKind.TEXT, "SV")
