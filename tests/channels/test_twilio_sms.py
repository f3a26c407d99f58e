"""channels/twilio/ over the real Twilio payload fixtures and the loopback fake API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest

from bot.clean import clean_text
from bot.messages import Inbound, InboundKind, Outgoing, OutgoingKind
from channels.base import ContactEffect, Handled, Ignored, InboundOutcome, Rejected
from channels.twilio.inbound import RejectReason, parse_inbound
from channels.twilio.sender import (
    PermanentSendError,
    RetryableSendError,
    SendError,
    TwilioSender,
    classify_rest_error,
    parse_retry_after,
)
from channels.twilio.signature import compute_signature, public_url, verify_signature
from channels.twilio.status import FINAL_STATUSES, StatusUpdate, parse_status
from channels.twilio.twiml import MAX_INBOUND_CHARS, render_twiml
from fakes.twilio_api import FakeTwilioAPI, load_fixture

SIGNATURES = load_fixture("signature_vectors.json")["vectors"]


def inbound_of(form: dict[str, Any]) -> Inbound:
    """The ``Inbound`` a form is handled as (the outcome must be ``Handled``)."""
    result = parse_inbound(form)
    assert isinstance(result, Handled), result
    return result.value


def status_of(form: dict[str, Any]) -> StatusUpdate:
    """The ``StatusUpdate`` a status form is handled as (the outcome must be ``Handled``)."""
    result = parse_status(form)
    assert isinstance(result, Handled), result
    return result.value


# --- signatures ----------------------------------------------------------------------------


@pytest.mark.parametrize("vector", SIGNATURES, ids=[v["name"] for v in SIGNATURES])
def test_signature_vectors_validate(vector: dict) -> None:
    assert (
        compute_signature(vector["auth_token"], vector["url"], vector["params"])
        == (vector["expected_signature"])
    )
    assert verify_signature(
        vector["auth_token"], vector["url"], vector["params"], vector["expected_signature"]
    )


@pytest.mark.parametrize("vector", SIGNATURES, ids=[v["name"] for v in SIGNATURES])
def test_signature_vectors_reject_tampering(vector: dict) -> None:
    token, url, params, sig = (
        vector["auth_token"],
        vector["url"],
        vector["params"],
        vector["expected_signature"],
    )
    assert not verify_signature(token, url, params, None)
    assert not verify_signature(token, url, params, "")
    assert not verify_signature("0" * 32, url, params, sig)
    assert not verify_signature(token, url.replace("kysely", "kyselu"), params, sig)
    changed = dict(params, Body=params.get("Body", "") + "!")
    assert not verify_signature(token, url, changed, sig)
    # an extra field Twilio did not send breaks it, a dropped one too
    assert not verify_signature(token, url, dict(params, Extra="1"), sig)
    assert not verify_signature(token, url, {k: v for k, v in params.items() if k != "To"}, sig)


def test_explicit_port_fails_once_the_port_is_dropped() -> None:
    vector = next(v for v in SIGNATURES if v["name"] == "explicit_port")
    url = vector["url"].replace(":8443", "")
    assert not verify_signature(
        vector["auth_token"], url, vector["params"], vector["expected_signature"]
    )


PUBLIC_URL_CASES = [
    # (name, kwargs, expected)
    (
        "as seen",
        dict(scheme="http", host="127.0.0.1:8000", path="/webhooks/twilio/sms"),
        "http://127.0.0.1:8000/webhooks/twilio/sms",
    ),
    (
        "public base url wins",
        dict(
            scheme="http",
            host="10.0.0.5:8000",
            path="/webhooks/twilio/status",
            query_string="survey=kirjasto&attempt=2",
            public_base_url="https://kysely.example.fi",
        ),
        "https://kysely.example.fi/webhooks/twilio/status?survey=kirjasto&attempt=2",
    ),
    (
        "public base url with port and prefix",
        dict(
            scheme="http",
            host="10.0.0.5",
            path="/webhooks/twilio/sms",
            public_base_url="https://kysely.example.fi:8443/palaute/",
        ),
        "https://kysely.example.fi:8443/palaute/webhooks/twilio/sms",
    ),
    (
        "behind a proxy: the host and scheme ProxyFix gives",
        dict(scheme="https", host="kysely.example.fi:8443", path="/webhooks/twilio/sms"),
        "https://kysely.example.fi:8443/webhooks/twilio/sms",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "expected"), [c[1:] for c in PUBLIC_URL_CASES], ids=[c[0] for c in PUBLIC_URL_CASES]
)
def test_public_url(kwargs: dict, expected: str) -> None:
    assert public_url(**kwargs) == expected


def test_rebuilt_url_validates_the_explicit_port_vector() -> None:
    vector = next(v for v in SIGNATURES if v["name"] == "explicit_port")
    url = public_url(scheme="https", host="kysely.example.fi:8443", path="/webhooks/twilio/sms")
    assert verify_signature(
        vector["auth_token"], url, vector["params"], vector["expected_signature"]
    )


# --- inbound ---------------------------------------------------------------------------------

INBOUND_CASES = [
    # fixture, kind, text, provider_id, address
    (
        "inbound_sms.json",
        InboundKind.TEXT,
        "Kyllä, vastaan mielelläni kyselyyn.",
        "SM4a3d8c46a180a8cd2589d5043a1b98c3",
        "+358401234567",
    ),
    (
        "inbound_sms_unicode.json",
        InboundKind.TEXT,
        "Hej! Jag är nöjd med biblioteket i Åbo 😊 "
        "Men öppettiderna på lördagar kunde vara längre 👍",
        "SM089fcbb731699127968afefece44f322",
        "+358501234567",
    ),
    (
        "inbound_mms.json",
        InboundKind.MEDIA,
        "",
        "MM5cbeadb88e09153caddbeb37a67dfe86",
        "+358407654321",
    ),
    (
        "inbound_stop.json",
        InboundKind.TEXT,
        "STOP",
        "SM10694b918c8899494f7d5a1ce19dad60",
        "+358401234567",
    ),
    (
        "inbound_start.json",
        InboundKind.TEXT,
        "START",
        "SMf41f856fb54088aa5c6cb23ea2f0e900",
        "+358401234567",
    ),
    (
        "inbound_help.json",
        InboundKind.TEXT,
        "HELP",
        "SM2f58f71ae7a665dd53b2991b1a7feeaa",
        "+358401234567",
    ),
]


@pytest.mark.parametrize(
    ("fixture", "kind", "text", "sid", "address"), INBOUND_CASES, ids=[c[0] for c in INBOUND_CASES]
)
def test_parse_inbound_fixtures(
    fixture: str, kind: InboundKind, text: str, sid: str, address: str
) -> None:
    inbound = inbound_of(load_fixture(fixture))
    assert inbound.channel == "sms"
    assert inbound.kind is kind
    assert inbound.text == text
    assert inbound.provider_id == sid
    assert inbound.address == address


def test_missing_body_counts_as_empty() -> None:
    form = load_fixture("inbound_mms.json")
    del form["Body"]
    inbound = inbound_of(form)
    assert (inbound.kind, inbound.text) == (InboundKind.MEDIA, "")
    form = load_fixture("inbound_sms.json")
    del form["Body"]
    inbound = inbound_of(form)
    assert (inbound.kind, inbound.text) == (InboundKind.TEXT, "")


def test_mms_with_a_caption_is_text() -> None:
    form = dict(load_fixture("inbound_mms.json"), Body="4")
    assert inbound_of(form).kind is InboundKind.TEXT


def test_unknown_fields_are_ignored() -> None:
    form = dict(load_fixture("inbound_sms.json"), NewFieldFromTwilio="x", AddOns="{}")
    assert inbound_of(form).text == "Kyllä, vastaan mielelläni kyselyyn."


def test_long_and_odd_bodies_are_cleaned_and_bounded() -> None:
    form = dict(load_fixture("inbound_sms.json"), Body="a\x00b\x07c\ud800d" + "x" * 10_000)
    inbound = inbound_of(form)
    assert inbound.text.startswith("abc?d")
    assert len(inbound.text) == MAX_INBOUND_CHARS
    inbound.text.encode("utf-8")  # storable
    decomposed = dict(load_fixture("inbound_sms.json"), Body="BO\u0308RJA")
    assert inbound_of(decomposed).text == "BÖRJA"


@pytest.mark.parametrize(
    ("body", "opt_out_type", "keyword"),
    [
        ("STOP", "STOP", "STOP"),
        ("stop", "STOP", "STOP"),
        ("Lopeta", "STOP", "STOP"),
        ("EI KIITOS", "STOP", "STOP"),  # a custom keyword of the Messaging Service
        ("JATKA", "START", "START"),
        ("Börja", "start", "START"),
        ("OHJE?", "HELP", "HELP"),
        ("3", "", None),
        ("3", "SOMETHING_NEW", None),
    ],
)
def test_opt_out_type_reaches_the_core(body: str, opt_out_type: str, keyword: str | None) -> None:
    form = dict(load_fixture("inbound_sms.json"), Body=body)
    if opt_out_type:
        form["OptOutType"] = opt_out_type
    inbound = inbound_of(form)
    assert inbound.provider_keyword == keyword
    assert inbound.text == body  # what the citizen sent is kept for the record


@pytest.mark.parametrize(
    ("missing", "reason", "message"),
    [
        ("From", RejectReason.NO_SENDER, "The form has no From number."),
        ("MessageSid", RejectReason.NO_MESSAGE_SID, "The form has no MessageSid."),
    ],
)
def test_forms_without_sender_or_sid_are_rejected(
    missing: str, reason: RejectReason, message: str
) -> None:
    form = load_fixture("inbound_sms.json")
    for name in (missing, "SmsMessageSid", "SmsSid") if missing == "MessageSid" else (missing,):
        del form[name]
    rejected = parse_inbound(form)
    assert isinstance(rejected, Rejected) and rejected.outcome is InboundOutcome.REJECTED
    assert (rejected.code, rejected.reason, rejected.status) == (reason, message, 400)
    # a status callback needs only the MessageSid
    assert isinstance(parse_status(form), Rejected) == (missing == "MessageSid")


# --- status callbacks -----------------------------------------------------------------------

STATUS_CASES = [
    ("status_delivered.json", "delivered", None, None, datetime(2026, 5, 14, 9, 13, tzinfo=UTC)),
    ("status_failed.json", "failed", 30007, None, None),
    (
        "status_undelivered.json",
        "undelivered",
        30003,
        ContactEffect.UNREACHABLE,
        datetime(2026, 5, 14, 9, 21, tzinfo=UTC),
    ),
]


@pytest.mark.parametrize(
    ("fixture", "status", "code", "effect", "done_at"),
    STATUS_CASES,
    ids=[c[0] for c in STATUS_CASES],
)
def test_parse_status_fixtures(
    fixture: str,
    status: str,
    code: int | None,
    effect: ContactEffect | None,
    done_at: datetime | None,
) -> None:
    form = load_fixture(fixture)
    update = status_of(form)
    assert update.sid == form["MessageSid"]
    assert update.status == status
    assert update.error_code == code
    assert update.contact_effect == effect
    assert update.done_at == done_at
    assert update.status in FINAL_STATUSES


def test_status_error_message_is_accepted() -> None:
    form = dict(load_fixture("status_failed.json"), ErrorMessage="Message filtered")
    assert status_of(form).error_message == "Message filtered"


@pytest.mark.parametrize(
    ("twilio_status", "status"),
    [("accepted", "queued"), ("queued", "queued"), ("sending", "sending"), ("sent", "sent")],
)
def test_intermediate_statuses(twilio_status: str, status: str) -> None:
    form = dict(load_fixture("status_delivered.json"), MessageStatus=twilio_status)
    form["SmsStatus"] = twilio_status
    del form["RawDlrDoneDate"]
    assert status_of(form).status == status


def test_inbound_statuses_are_ignored() -> None:
    ignored = parse_status(load_fixture("inbound_sms.json"))
    assert isinstance(ignored, Ignored) and ignored.outcome is InboundOutcome.IGNORED
    assert "'received' is not an outbound delivery status" in ignored.reason
    assert ignored.request_id == load_fixture("inbound_sms.json")["MessageSid"]


# --- TwiML ----------------------------------------------------------------------------------


def test_render_twiml_one_message_per_reply() -> None:
    replies = [
        Outgoing("Kiitos! <3 & tervetuloa", "fi", OutgoingKind.INFO),
        Outgoing("Kuinka tyytyväinen olit? Vastaa 1-5.", "fi", step_id="q1"),
    ]
    root = ElementTree.fromstring(render_twiml(replies))
    assert root.tag == "Response"
    assert [m.text for m in root.findall("Message")] == [
        "Kiitos! <3 & tervetuloa",
        "Kuinka tyytyväinen olit? Vastaa 1-5.",
    ]


def test_render_twiml_empty_and_control_characters() -> None:
    assert ElementTree.fromstring(render_twiml([])).findall("Message") == []
    root = ElementTree.fromstring(render_twiml([Outgoing("a\x01b😊", "en")]))
    assert root.findall("Message")[0].text == "ab😊"


@pytest.mark.parametrize(
    "texts",
    [
        [],
        ["Kiitos!"],
        ["a & b < c > d \" e ' f ä ö å 😊", "Toinen\nrivi\r\n  ja välit  "],
        ["   ", "x"],  # a blank reply is left out
        ["]]> <![CDATA[ &amp; \t tab"],
    ],
)
def test_render_twiml_writes_what_the_twilio_library_writes(texts: list[str]) -> None:
    from twilio.twiml.messaging_response import MessagingResponse

    library = MessagingResponse()
    for text in texts:
        if clean_text(text).strip():
            library.message(clean_text(text))
    assert render_twiml(texts) == library.to_xml(xml_declaration=True)


# --- sending --------------------------------------------------------------------------------

FROM = "+358451230000"
TO = "+358401234567"


@pytest.fixture
def sender(twilio_api: FakeTwilioAPI) -> TwilioSender:
    return TwilioSender(
        twilio_api.account_sid,
        twilio_api.auth_token,
        from_number=FROM,
        base_url=twilio_api.base_url,
        timeout=5,
    )


def test_send_uses_the_real_sdk_against_the_base_url(
    twilio_api: FakeTwilioAPI, sender: TwilioSender
) -> None:
    result = sender.send(TO, "Hei! Kuinka tyytyväinen olit? 😊", status_callback="https://x/cb?m=7")
    assert result.sid.startswith("SM") and len(result.sid) == 34
    assert (result.status, result.twilio_status, result.num_segments) == ("queued", "queued", 1)
    (request,) = twilio_api.creates()
    assert request.path == f"/2010-04-01/Accounts/{twilio_api.account_sid}/Messages.json"
    assert request.auth == (twilio_api.account_sid, twilio_api.auth_token)
    assert request.form == {
        "To": TO,
        "From": FROM,
        "Body": "Hei! Kuinka tyytyväinen olit? 😊",
        "StatusCallback": "https://x/cb?m=7",
    }


def test_send_through_a_messaging_service(twilio_api: FakeTwilioAPI) -> None:
    sender = TwilioSender(
        twilio_api.account_sid,
        twilio_api.auth_token,
        messaging_service_sid="MG581e99732220afadc08fb3fe98e4bcbc",
        base_url=twilio_api.base_url,
    )
    result = sender.send(TO, "Hei")
    assert (result.status, result.twilio_status) == ("queued", "accepted")
    assert (
        twilio_api.creates()[0].form["MessagingServiceSid"] == "MG581e99732220afadc08fb3fe98e4bcbc"
    )
    assert "From" not in twilio_api.creates()[0].form


RETRY, PERMANENT = RetryableSendError, PermanentSendError
ERROR_CASES = [
    # name, script, error type, code, retry_after, contact effect
    ("429 with Retry-After", dict(status=429, retry_after=7), RETRY, "20429", 7.0, None),
    ("500", dict(status=500), RETRY, "20500", None, None),
    ("503 with Retry-After", dict(status=503, retry_after=2), RETRY, "20500", 2.0, None),
    ("502 html", dict(status=502, body="<html>Bad Gateway</html>"), RETRY, "502", None, None),
    ("21610 unsubscribed", dict(status=400, code=21610), PERMANENT, "21610", None,
     ContactEffect.OPTED_OUT),
    ("21211 invalid", dict(status=400, code=21211), PERMANENT, "21211", None,
     ContactEffect.INVALID),
    ("21614 not mobile", dict(status=400, code=21614), PERMANENT, "21614", None,
     ContactEffect.INVALID),
    ("30003 unreachable", dict(status=400, code=30003), PERMANENT, "30003", None,
     ContactEffect.UNREACHABLE),
    ("30005 unknown", dict(status=400, code=30005), PERMANENT, "30005", None,
     ContactEffect.UNREACHABLE),
    ("30006 landline", dict(status=400, code=30006), PERMANENT, "30006", None,
     ContactEffect.UNREACHABLE),
    ("21602 other 4xx", dict(status=400, code=21602), PERMANENT, "21602", None, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("script", "error_type", "code", "retry_after", "effect"),
    [c[1:] for c in ERROR_CASES],
    ids=[c[0] for c in ERROR_CASES],
)
def test_send_errors_are_typed(
    twilio_api: FakeTwilioAPI,
    sender: TwilioSender,
    script: dict,
    error_type: type[SendError],
    code: str,
    retry_after: float | None,
    effect: ContactEffect | None,
) -> None:
    twilio_api.fail_next(**script)
    with pytest.raises(SendError) as info:
        sender.send(TO, "Hei")
    error = info.value
    assert type(error) is error_type
    assert error.retryable is (error_type is RetryableSendError)
    assert (error.code, error.retry_after, error.contact_effect) == (code, retry_after, effect)
    assert not error.maybe_sent
    assert twilio_api.messages == []
    # the next send works again
    assert sender.send(TO, "Hei").sid == twilio_api.messages[0]["sid"]


def test_fixture_error_bodies_parse_into_the_same_codes(
    twilio_api: FakeTwilioAPI, sender: TwilioSender
) -> None:
    for name in ("error_21610_response.json", "error_429_response.json"):
        body = load_fixture(name)
        error = classify_rest_error(body["status"], body["code"], body["message"], None)
        assert error.retryable is (body["status"] == 429)
    twilio_api.fail_for(TO, 21610)
    with pytest.raises(PermanentSendError) as info:
        sender.send(TO, "Hei")
    assert info.value.contact_effect is ContactEffect.OPTED_OUT


def test_connection_refused_is_retryable_and_not_sent() -> None:
    sender = TwilioSender("AC" + "0" * 32, "t", from_number=FROM, base_url="http://127.0.0.1:9")
    with pytest.raises(RetryableSendError) as info:
        sender.send(TO, "Hei")
    assert not info.value.maybe_sent


def test_dropped_answer_is_maybe_sent_and_can_be_found(
    twilio_api: FakeTwilioAPI, sender: TwilioSender
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    twilio_api.drop_next()
    with pytest.raises(RetryableSendError) as info:
        sender.send(TO, "Kiitos vastauksestasi!")
    assert info.value.maybe_sent
    assert sender.find_sent(TO, "Kiitos vastauksestasi!", before) == twilio_api.messages[0]["sid"]
    assert sender.find_sent(TO, "Jotain muuta", before) is None
    assert sender.find_sent("+358409999999", "Kiitos vastauksestasi!", before) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("soon", None), (None, None),
     ("Thu, 14 May 2026 09:13:01 GMT", 30.0)],
)  # fmt: skip
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2026, 5, 14, 9, 12, 31, tzinfo=UTC)
    assert parse_retry_after(header, now) == expected


def test_sender_needs_credentials_and_a_sender() -> None:
    with pytest.raises(ValueError, match="TWILIO_ACCOUNT_SID"):
        TwilioSender("", "", from_number=FROM)
    with pytest.raises(ValueError, match="TWILIO_FROM_NUMBER"):
        TwilioSender("AC1", "t")


def test_sender_reads_proxy_and_ca_settings_from_the_environment_when_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Behind an egress proxy the sender still uses it (resolved once, not per send);
    NO_PROXY is honoured and REQUESTS_CA_BUNDLE picks the CA certificates."""
    import urllib3

    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    account = "AC" + "0" * 32
    http = TwilioSender(account, "token", from_number=FROM)._http
    assert isinstance(http._pool, urllib3.ProxyManager)
    assert (http._pool.proxy.host, http._pool.proxy.port) == ("proxy.example", 3128)
    assert http.ca_bundle == "/etc/ssl/certs/ca-certificates.crt"
    monkeypatch.setenv("NO_PROXY", "api.twilio.com")
    http = TwilioSender(account, "token", from_number=FROM)._http
    assert not isinstance(http._pool, urllib3.ProxyManager)
