"""The app's long-lived collaborators, built once per app (or per CLI command).

``build_services(settings)`` makes the database engine (no connection yet), loads the
flow catalogue and wires the conversation service. Flask blueprints reach it through
``palaute.web.services()``; CLI commands and ``palaute clock`` call ``build_services``
themselves. The channel workers are built here too, from the settings: ``sms_outbox``
and ``telegram_outbox`` (None when the channel is not configured), on the process's one
Telegram sender.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from sqlalchemy import Engine

from bot import language
from bot.catalogue import Catalogue
from channels.telegram.sender import TelegramSender
from channels.twilio.sender import TwilioSender
from palaute.config import Settings
from service.accounts import AccountService, LockoutPolicy
from service.conversations import ConversationService
from service.retry import RetryPolicy
from service.sms_outbox import SmsOutbox
from service.telegram_outbox import TelegramOutbox
from service.timesource import utcnow
from storage.db import make_engine

log = logging.getLogger(__name__)


@functools.cache
def _warn_once(message: str) -> None:
    log.warning(message)


@dataclass
class Services:
    settings: Settings
    db: Engine
    catalogue: Catalogue
    conversations: ConversationService
    accounts: AccountService
    # Slow, optional preparations (language detectors...) run once after start-up.
    warm_ups: list[Callable[[], None]] = field(default_factory=list)
    # The Telegram worker's Bot API client (one event loop for its life), made on first
    # use by ``telegram_sender()``; never used by web requests.
    _telegram_sender: TelegramSender | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def warm_up(self) -> None:
        """Run every warm-up hook; a failing hook is logged, never fatal."""
        for hook in self.warm_ups:
            try:
                hook()
            except Exception:  # a warm-up only saves time later; the first use retries
                log.exception("warm-up %r failed; it will happen on first use instead", hook)

    def warm_up_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.warm_up, name="palaute-warm-up", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        if self._telegram_sender is not None:
            self._telegram_sender.close()
        self.db.dispose()

    # --- channel workers -------------------------------------------------------------------

    def twilio_sender(self) -> TwilioSender | None:
        """A Twilio sender for these settings, or None when Twilio is not configured."""
        settings = self.settings
        if not settings.twilio_account_sid or not settings.twilio_auth_token:
            return None
        if not settings.twilio_from_number and not settings.twilio_messaging_service_sid:
            return None
        return TwilioSender(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            from_number=settings.twilio_from_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            base_url=settings.twilio_api_base_url,
        )

    def sms_outbox(
        self,
        *,
        worker_id: str | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        send_threads: int = 4,
    ) -> SmsOutbox | None:
        """The SMS worker for the app's settings, or None when Twilio is not configured."""
        settings = self.settings
        sender = self.twilio_sender()
        if sender is None:
            _warn_once(
                "Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
                "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID): queued SMS stay queued."
            )
            return None
        if not settings.public_base_url:
            _warn_once(
                "PUBLIC_BASE_URL is not set: SMS are sent without a StatusCallback, so "
                "delivery statuses (delivered/undelivered/failed) will not be recorded."
            )
        return SmsOutbox(
            self.db,
            sender,
            self.conversations.contacts,
            rate_per_second=settings.sms_rate_per_second,
            public_base_url=settings.public_base_url,
            worker_id=worker_id,
            policy=policy,
            clock=clock,
            sleep=sleep,
            rng=rng,
            send_threads=send_threads,
        )

    def telegram_sender(self) -> TelegramSender | None:
        """The process's one Telegram sender (None when TELEGRAM_BOT_TOKEN is not set)."""
        settings = self.settings
        if not settings.telegram_bot_token:
            return None
        with self._lock:
            if self._telegram_sender is None:
                self._telegram_sender = TelegramSender(
                    settings.telegram_bot_token, settings.telegram_api_base_url
                )
            return self._telegram_sender

    def use_telegram_sender(self, sender: TelegramSender) -> None:
        """Replace the process's Telegram sender (tests: one with a faster rate limiter)."""
        with self._lock:
            self._telegram_sender = sender

    def telegram_outbox(
        self,
        *,
        worker_id: str | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        lease: timedelta = timedelta(minutes=2),
    ) -> TelegramOutbox | None:
        """The Telegram worker, or None when TELEGRAM_BOT_TOKEN is not set."""
        sender = self.telegram_sender()
        if sender is None:
            return None
        return TelegramOutbox(
            self.db,
            sender,
            self.conversations.contacts,
            worker_id=worker_id,
            policy=policy,
            clock=clock,
            rng=rng,
            lease=lease,
        )


def language_warm_up(catalogue: Catalogue) -> Callable[[], None]:
    """Build the language detectors every loaded flow's language set will use."""

    def warm() -> None:
        for languages in sorted({tuple(sorted(flow.languages)) for flow in catalogue.all()}):
            language.warm(languages)

    return warm


def build_engine(settings: Settings) -> Engine:
    """The database engine of a one-off CLI command (connects to nothing yet; the
    command disposes of it)."""
    return make_engine(settings.database_url)


def build_services(settings: Settings, *, catalogue: Catalogue | None = None) -> Services:
    """Everything a request or a command needs. Connects to nothing yet."""
    # A long-running app: SQLite's WAL checkpoints (and their fsyncs) run in a background
    # thread instead of inside whichever request's commit crosses the threshold.
    db = make_engine(settings.database_url, background_checkpoints=True)
    flows = catalogue if catalogue is not None else Catalogue.load(settings.flows_dir)
    conversations = ConversationService(
        db,
        flows,
        address_key_secret=settings.address_key_secret,
        organisation=settings.organisation_name,
        organisation_contact=settings.organisation_contact,
    )
    return Services(
        settings=settings,
        db=db,
        catalogue=flows,
        conversations=conversations,
        accounts=build_accounts(settings, db, flows),
        warm_ups=[language_warm_up(flows)],
    )


def build_accounts(settings: Settings, db: Engine, catalogue: Catalogue) -> AccountService:
    """Staff accounts with the configured argon2 cost and lockout."""
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    lockout = LockoutPolicy(
        attempts=settings.login_lockout_attempts, minutes=settings.login_lockout_minutes
    )
    return AccountService(db, catalogue, hasher=hasher, lockout=lockout)
