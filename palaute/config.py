"""All configuration, read from environment variables in one place.

Every variable is listed in README.md ("Configuration"). The one exception is the
standard outbound proxy and CA settings (``HTTPS_PROXY``/``NO_PROXY``,
``REQUESTS_CA_BUNDLE``), which ``channels.twilio.http`` reads once when a Twilio sender
is made, as every HTTP client does (README, "Deploying").
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

DEV_SECRET_KEY = "dev-only-not-secret"
DEV_ADDRESS_KEY_SECRET = "dev-only-address-key"
MIN_SECRET_BYTES = 32
SECRET_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


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
        default=DEV_SECRET_KEY, description="Flask session signing key (set in production)."
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
        default="Europe/Helsinki",
        description="Fallback time zone for follow-ups; the days, weeks and months of results.",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    palaute_env: Literal["development", "production"] = Field(
        default="development",
        description="`production` refuses to start with default or short secrets (gunicorn "
        "via gunicorn.conf.py defaults to it).",
    )

    # --- request size limits (bytes; a longer body gets 413 before it is read) -------------
    max_content_length: int = Field(
        default=64 * 1024,
        ge=1,
        description="Largest request body for the simulator and every other page.",
    )
    max_content_length_webhooks: int = Field(
        default=256 * 1024,
        ge=1,
        description="Largest request body for /webhooks/* (Twilio, Telegram).",
    )
    max_content_length_api: int = Field(
        default=2 * 1024 * 1024,
        ge=1,
        description="Largest request body for /api/* (a full visits batch is well under it).",
    )
    address_key_secret: str = Field(
        default=DEV_ADDRESS_KEY_SECRET,
        description="Key for the hashes that look up phone numbers and chat ids (set a long "
        "random value in production and never change it: contacts become unfindable).",
    )

    # --- the browser simulator ------------------------------------------------------------
    simulator_enabled: bool = Field(
        default=False,
        description="Serve /simulator (anonymous; writes to the database). Off by default; "
        "`palaute serve` and `make run` turn it on unless this is set.",
    )
    simulator_start_limit: str = Field(
        default="10 per minute",
        description="Rate limit per client address for simulator starts and new contacts "
        "(Flask-Limiter syntax, e.g. '10 per minute;100 per day'), per web process.",
    )
    simulator_message_limit: str = Field(
        default="120 per minute",
        description="Rate limit per client address for simulator messages, per web process.",
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

    # --- staff pages (/dashboard) -------------------------------------------------------
    session_cookie_secure: bool = Field(
        default=True,
        description="Send the session cookie over HTTPS only. Turn off only for local http "
        "(`make run` does).",
    )
    session_idle_minutes: float = Field(
        default=30.0, gt=0, description="A staff session ends after this long without a request."
    )
    login_lockout_attempts: int = Field(
        default=5, ge=1, description="Failed sign-ins in a row that lock an account."
    )
    login_lockout_minutes: float = Field(
        default=15.0, gt=0, description="How long a locked account stays locked."
    )
    login_rate_limit_account: str = Field(
        default="10 per minute;50 per hour",
        description="Sign-in attempts allowed per email address (Flask-Limiter notation).",
    )
    login_rate_limit_address: str = Field(
        default="30 per minute;300 per hour",
        description="Sign-in attempts allowed per client IP address (Flask-Limiter notation).",
    )
    rate_limit_storage_uri: str = Field(
        default="memory://",
        description="Where rate-limit counters live: memory:// (per process) or a shared "
        "store such as redis://host:6379.",
    )
    argon2_time_cost: int = Field(default=3, ge=1, description="argon2id passes per hash.")
    argon2_memory_kib: int = Field(
        default=65536, ge=8, description="argon2id memory per hash, in KiB."
    )
    argon2_parallelism: int = Field(default=4, ge=1, description="argon2id lanes per hash.")

    @property
    def production(self) -> bool:
        return self.palaute_env == "production"


class UnsafeConfiguration(RuntimeError):
    """Settings that must not be used in production; the message says what to change."""


def production_problems(settings: Settings) -> list[str]:
    """What keeps these settings from running in production (empty when nothing does)."""
    problems = []
    for name, value, default in (
        ("SECRET_KEY", settings.secret_key, DEV_SECRET_KEY),
        ("ADDRESS_KEY_SECRET", settings.address_key_secret, DEV_ADDRESS_KEY_SECRET),
    ):
        if value == default:
            problems.append(f"{name} is the development default")
        elif len(value.encode("utf-8")) < MIN_SECRET_BYTES:
            problems.append(f"{name} is shorter than {MIN_SECRET_BYTES} bytes")
    return problems


def require_production_ready(settings: Settings) -> None:
    """With ``PALAUTE_ENV=production``, refuse default or short secrets (raises)."""
    if not settings.production:
        return
    problems = production_problems(settings)
    if problems:
        raise UnsafeConfiguration(
            "PALAUTE_ENV=production, but " + "; ".join(problems) + ". Set each to a random "
            f"value of at least {MIN_SECRET_BYTES} bytes, e.g. the output of {SECRET_HINT} "
            "(ADDRESS_KEY_SECRET once, never changed: contacts become unfindable). "
            "For development set PALAUTE_ENV=development."
        )
