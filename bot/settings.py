"""Configuration from the environment or `.env` (documented in `.env.example`)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DISCORD_API = "https://discord.com/api/v10"
DISCORD_GATEWAY = "wss://gateway.discord.gg/"


class Settings(BaseSettings):
    # an empty value (`KEY=` as in .env.example) means unset: the default applies
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    data_dir: Path = Field(default=Path("data"), description="where the SQLite database lives")
    database_url: str | None = Field(default=None, description="PostgreSQL url; SQLite if unset")
    log_level: str = "INFO"
    paper_taker_bps: Decimal = Decimal("4.5")
    paper_slippage_bps: Decimal = Decimal(5)
    # comma-separated market lists of the paper venues; empty: the real venues' defaults
    paper_markets_hyperliquid: str = ""
    paper_markets_ostium: str = ""
    order_concurrency: int = Field(default=64, ge=1, le=1024)
    approval_ttl_seconds: int = Field(default=300, ge=10)
    pending_open_ttl_seconds: int = Field(default=600, ge=10)
    checkpoint_seconds: int = Field(default=30, ge=1, description="trailing-stop save interval")
    # replicas (PostgreSQL only): several `maxxit run` on one DATABASE_URL share the work
    replica_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.:-]{1,48}$", description="host-pid if unset"
    )
    lease_seconds: float = Field(default=8.0, ge=2, le=120, description="market shard lease")
    order_lease_seconds: float = Field(default=120.0, ge=5, le=3600)
    sweep_seconds: float = Field(default=1.0, gt=0, le=60, description="pending-order sweep")
    # chat and web
    telegram_bot_token: SecretStr | None = None  # never in a repr or a log line
    telegram_api_url: str = "https://api.telegram.org"
    # an unreachable Bot API at start is tried again after this many seconds, doubling each
    # time up to the cap (bot/startup.py); the web server serves meanwhile
    telegram_retry_seconds: float = Field(1.0, gt=0)
    telegram_retry_max_seconds: float = Field(60.0, gt=0)
    # the pinned /monitor message is edited at most this often per chat (bot/telegram_monitor)
    monitor_edit_seconds: float = Field(5.0, ge=1, le=3600)
    public_url: str | None = Field(default=None, description="https base; set: webhook mode")
    telegram_webhook_secret: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,256}$",
        description="derived from the token if unset",
    )
    # chains a wallet may sign the link message on (Ethereum, Arbitrum)
    siwe_chain_ids: str = Field(default="1,42161", pattern=r"^\d+(,\d+)*$")
    # the vault's master key(s), never logged (SecretStr hides them in reprs)
    maxxit_master_key: SecretStr | None = None
    maxxit_master_keys_old: SecretStr | None = None
    # Hyperliquid (live trading needs MAXXIT_MASTER_KEY too)
    hyperliquid_network: Literal["testnet", "mainnet"] = "testnet"
    hyperliquid_api_url: str | None = Field(default=None, description="overrides the network")
    # Hyperliquid's public prices (no key): paper trades and stops need prices to work
    price_feed: Literal["none", "hyperliquid"] = "hyperliquid"
    reconcile_seconds: int = Field(default=180, ge=10)
    # live stops resting on Hyperliquid follow the trailing stop: at most one move per position
    # this often, and only by at least this fraction of the price (the venue's weight budget)
    protection_move_seconds: int = Field(default=30, ge=1)
    protection_min_step_pct: Decimal = Field(default=Decimal("0.001"), ge=0, lt=1)
    markets_refresh_seconds: int = Field(default=600, ge=30)
    # Arbitrum (Safe module for Ostium): an RPC node, and the Safe Transaction Service key
    arbitrum_rpc_url: str | None = None
    safe_api_key: SecretStr | None = None
    # ingestion: X accounts (API v2 bearer token) and research feeds
    x_bearer_token: SecretStr | None = None
    x_api_url: str = "https://api.x.com"
    x_poll_seconds: int = Field(default=60, ge=5)
    x_include_replies: bool = False
    feed_poll_seconds: int = Field(default=300, ge=30)
    # classification: an OpenAI-compatible model, the rules as fallback
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(default=20.0, gt=0)
    llm_concurrency: int = Field(default=4, ge=1, le=64)
    # for `maxxit stats`: dollars per million tokens (gpt-4o-mini's list prices by default)
    llm_price_input_per_mtok: Decimal = Decimal("0.15")
    llm_price_output_per_mtok: Decimal = Decimal("0.60")
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    # paid agents (Stripe): both set turns billing on; the API URL only for tests
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_url: str | None = Field(default=None, description="tests' Stripe stand-in")
    # email alerts (SMTP); unset host: no email channel
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Maxxit <alerts@localhost>"
    smtp_starttls: bool = True
    smtp_implicit_tls: bool = False
    # Discord: a token runs the gateway (and sends DM alerts); a public key serves signed HTTP
    # interactions at PUBLIC_URL/discord/interactions instead (README, "Discord")
    discord_bot_token: SecretStr | None = None
    discord_application_id: str | None = Field(default=None, pattern=r"^\d{5,25}$")
    discord_public_key: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    discord_api_url: str = DISCORD_API
    discord_gateway_url: str | None = Field(default=None, description="the API's host if unset")
    discord_guild_id: str | None = Field(
        default=None, pattern=r"^\d{5,25}$", description="commands also here, at once (dev)"
    )
    # Ostium live trading (needs MAXXIT_MASTER_KEY and OSTIUM_RPC_URL, an Arbitrum node):
    # signed transactions always go to OSTIUM_SUBMIT_RPC_URL (else OSTIUM_RPC_URL), never to
    # the SDK's default (the public Arbitrum sequencer)
    ostium_network: Literal["testnet", "mainnet"] = "mainnet"
    ostium_rpc_url: str | None = None
    ostium_submit_rpc_url: str | None = None
    ostium_graph_url: str | None = Field(default=None, description="the network's if unset")
    ostium_price_url: str = "https://metadata-backend.prod.bedrock.ostium.io"
    ostium_price_feed: bool = False
    ostium_fill_wait_seconds: float = Field(default=20.0, gt=0)
    # "usdc=0x..,trading=0x..,tradingStorage=0x..": overrides the network's contracts
    ostium_contracts: str | None = None
    # abuse limits (`limits` rate strings): chat updates per user and per chat, the quiet
    # period after "slow down", /call per agent, web calls per client IP and per link token;
    # counters live in memory, or in Redis (shared by replicas) when REDIS_URL is set
    redis_url: SecretStr | None = None
    limit_per_user: str = "20 per 10 seconds"
    limit_per_chat: str = "40 per 10 seconds"
    limit_quiet: str = "1 per 60 seconds"
    call_rate: str = "6 per hour"
    web_limit_per_ip: str = "60 per minute"
    web_limit_per_token: str = "10 per 10 minutes"
    purge_seconds: int = Field(default=600, ge=10, description="expired sign-in rows purged")

    def webhook_secret(self) -> str | None:
        """Telegram echoes this in every webhook call; several processes must agree on it,
        so without an explicit one it is derived from the bot token."""
        if self.telegram_webhook_secret:
            return self.telegram_webhook_secret
        token = self.bot_token()
        if not token:
            return None
        return hashlib.sha256(f"maxxit-webhook:{token}".encode()).hexdigest()

    def bot_token(self) -> str | None:
        """The Telegram bot token's value, for the client only."""
        return self.telegram_bot_token.get_secret_value() if self.telegram_bot_token else None

    def chain_ids(self) -> frozenset[int]:
        return frozenset(int(c) for c in self.siwe_chain_ids.split(","))

    def public_base(self) -> str:
        """Where users reach our web server: PUBLIC_URL, else this machine's port."""
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    def vault_env(self) -> dict[str, str]:
        """The master keys as the vault reads them (from .env as well as the environment)."""
        env = {}
        if self.maxxit_master_key:
            env["MAXXIT_MASTER_KEY"] = self.maxxit_master_key.get_secret_value()
        if self.maxxit_master_keys_old:
            env["MAXXIT_MASTER_KEYS_OLD"] = self.maxxit_master_keys_old.get_secret_value()
        return env

    def discord_gateway(self) -> str:
        """DISCORD_GATEWAY_URL; else Discord's, or the API's own host when it points elsewhere
        (a proxy or a test server serving both)."""
        if self.discord_gateway_url:
            return self.discord_gateway_url
        api = urlsplit(self.discord_api_url)
        if self.discord_api_url.rstrip("/") == DISCORD_API:
            return DISCORD_GATEWAY
        return f"{'wss' if api.scheme == 'https' else 'ws'}://{api.netloc}/"
