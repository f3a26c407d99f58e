"""All configuration, read from environment variables in one place.

Every variable is listed in README.md ("Configuration"). The one exception is the
standard outbound proxy and CA settings (``HTTPS_PROXY``/``NO_PROXY``,
``REQUESTS_CA_BUNDLE``), which ``channels.twilio.http`` reads once when a Twilio sender
is made, as every HTTP client does (README, "Deploying").
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # --- core -----------------------------------------------------------------------------
    database_url: str = Field(
        default=f"sqlite:///{REPO_ROOT / 'var' / 'palaute.sqlite3'}",
        description="SQLAlchemy URL. SQLite (WAL) by default; "
        "postgresql+psycopg://user@host/db in production.",
    )
    flows_dir: Path = Field(default=REPO_ROOT / "flows", description="Folder of YAML flows.")
    secret_key: str = Field(
        default="dev-only-not-secret", description="Flask session signing key (set in production)."
    )
    public_base_url: str | None = Field(
        default=None,
        description="The public URL providers call (e.g. https://palaute.example.fi), used to "
        "verify Twilio signatures behind a proxy.",
    )
    trust_forwarded_headers: bool = Field(
        default=False,
        description="Trust X-Forwarded-Proto/Host/Port from a reverse proxy (only behind one).",
    )
    organisation_name: str = Field(default="Palaute", description="Shown in HELP replies.")
    organisation_contact: str = Field(
        default="", description="Phone or web address shown in HELP replies."
    )
    organisation_timezone: str = Field(
        default="Europe/Helsinki", description="Fallback time zone for follow-ups."
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    address_key_secret: str = Field(
        default="dev-only-address-key",
        description="Key for the hashes that look up phone numbers and chat ids (set a long "
        "random value in production and never change it: contacts become unfindable).",
    )

    # --- Twilio SMS -----------------------------------------------------------------------
    twilio_account_sid: str = Field(default="", description="Twilio account SID (AC...).")
    twilio_auth_token: str = Field(
        default="", description="Twilio auth token: signs webhooks, authenticates sends."
    )
    twilio_from_number: str = Field(default="", description="Sender number in E.164.")
    twilio_messaging_service_sid: str = Field(
        default="", description="Send through a Messaging Service (MG...) instead of a number."
    )
    twilio_api_base_url: str = Field(
        default="https://api.twilio.com",
        description="Twilio REST base URL (tests point it at a loopback fake).",
    )
    twilio_skip_signature_check: bool = Field(
        default=False,
        description="DEVELOPMENT ONLY: accept unsigned Twilio webhooks (a warning is logged).",
    )
    sms_rate_per_second: float = Field(
        default=1.0, description="Messages per second per sending number (long code 1, short 100)."
    )
    sms_max_segments: int = Field(
        default=2, description="`flows validate` warns when a prompt costs more SMS segments."
    )

    # --- Telegram ---------------------------------------------------------------------------
    telegram_bot_token: str = Field(default="", description="Bot token from @BotFather.")
    telegram_bot_username: str = Field(default="", description="Bot username, for deep links.")
    telegram_webhook_secret: str = Field(
        default="", description="Secret checked in X-Telegram-Bot-Api-Secret-Token."
    )
    telegram_api_base_url: str = Field(
        default="https://api.telegram.org",
        description="Bot API base URL (tests point it at a loopback fake).",
    )

    # --- clock and workers ----------------------------------------------------------------
    clock_interval_seconds: float = Field(default=5.0, description="How often due work is claimed.")
    clock_batch_size: int = Field(default=200, description="Rows claimed per tick.")

    # --- follow-ups after visits ----------------------------------------------------------
    phone_default_region: str = Field(
        default="FI",
        description="Country (ISO 3166 code) for phone numbers written without +country code.",
    )
    followup_default_flow: str = Field(
        default="",
        description="Flow for visits that name none and match no flow's service_points.",
    )
    clock_outbox_workers: int = Field(
        default=2,
        description="Outbox sender threads per `palaute clock` process, per channel.",
    )
    clock_lease_seconds: float = Field(
        default=120.0,
        description="How long a clock holds claimed follow-ups; a crashed clock's claims are "
        "taken over after this.",
    )
