"""Shared by the SMS webhook and outbox tests: the app wired to a fake Twilio, signed posts."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from flask import Flask
from flask.testing import FlaskClient

from channels.twilio.signature import compute_signature
from fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioAPI, load_fixture
from palaute.app import create_app
from palaute.web import EXTENSION_KEY
from service.retry import RetryPolicy
from service.sms_outbox import SmsOutbox
from tests.clock import Clock

PUBLIC = "https://kysely.example.fi"
SURVEY_NUMBER = "+358451230000"
REPO_FLOWS = Path(__file__).resolve().parents[2] / "flows"


def new_sid(prefix: str = "SM") -> str:
    return prefix + secrets.token_hex(16)


def inbound_form(number: str, body: str | None, sid: str | None = None, **extra: str) -> dict:
    """An inbound SMS form shaped like inbound_sms_unicode.json (no Messaging Service)."""
    form = load_fixture("inbound_sms_unicode.json")
    sid = sid or new_sid()
    form.update(SmsMessageSid=sid, SmsSid=sid, MessageSid=sid, From=number, To=SURVEY_NUMBER)
    if body is None:
        del form["Body"]
    else:
        form["Body"] = body
    form.update(extra)
    return form


def twiml_texts(xml: str) -> list[str]:
    root = ElementTree.fromstring(xml)
    assert root.tag == "Response", xml
    return [m.text or "" for m in root.findall("Message")]


def make_app(
    db_url: str, clock: Clock, fake: FakeTwilioAPI | None = None, **settings: Any
) -> Flask:
    config: dict[str, Any] = {
        "TESTING": True,
        "CLOCK": clock,
        "DATABASE_URL": db_url,
        "FLOWS_DIR": REPO_FLOWS,
        "PUBLIC_BASE_URL": PUBLIC,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": SURVEY_NUMBER,
        "TWILIO_SKIP_SIGNATURE_CHECK": False,
        "TRUST_FORWARDED_HEADERS": False,
        "SMS_RATE_PER_SECOND": 1000.0,
        "ORGANISATION_NAME": "Kaarinan kaupunki",
        "ORGANISATION_CONTACT": "02 588 1000",
    }
    if fake is not None:
        config["TWILIO_API_BASE_URL"] = fake.base_url
    config.update({key.upper(): value for key, value in settings.items()})
    return create_app(config)


def services_of(app: Flask) -> Any:
    return app.extensions[EXTENSION_KEY]


@dataclass
class Phone:
    """One citizen's phone: posts signed inbound SMS and collects everything it receives
    (TwiML replies and, after ``flush``, what the outbox sent through the fake Twilio)."""

    app: Flask
    number: str
    fake: FakeTwilioAPI | None = None
    worker: SmsOutbox | None = None
    received: list[str] = field(default_factory=list)
    _seen_at_fake: int = 0

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    def post(
        self,
        form: Mapping[str, str],
        *,
        path: str = "/webhooks/twilio/sms",
        signature: str | None = "compute",
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        all_headers = dict(headers or {})
        if signature == "compute":
            signature = compute_signature(AUTH_TOKEN, PUBLIC + path, form)
        if signature is not None:
            all_headers["X-Twilio-Signature"] = signature
        return self.client.post(path, data=dict(form), headers=all_headers)

    def send(self, body: str | None, sid: str | None = None, **extra: str) -> list[str]:
        """Send an SMS; returns the TwiML replies (also kept in ``received``)."""
        response = self.post(inbound_form(self.number, body, sid, **extra))
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/xml"
        texts = twiml_texts(response.get_data(as_text=True))
        self.received.extend(texts)
        self.flush()
        return texts

    def flush(self) -> list[str]:
        """Let the outbox worker send what is due; returns what reached this phone."""
        if self.worker is None or self.fake is None:
            return []
        self.worker.run_until_idle()
        mine = self.fake.sent_to(self.number)
        new = [m["body"] for m in mine[self._seen_at_fake :]]
        self._seen_at_fake = len(mine)
        self.received.extend(new)
        return new


def worker_for(app: Flask, clock: Clock, **kwargs: Any) -> SmsOutbox:
    kwargs.setdefault("policy", RetryPolicy(max_attempts=4))
    worker = services_of(app).sms_outbox(clock=clock, sleep=lambda _s: None, **kwargs)
    assert worker is not None
    return worker
