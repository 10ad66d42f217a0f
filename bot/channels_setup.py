"""Building billing (Stripe) and the alert channels (email, webhooks) from the settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.settings import Settings
from engine.channels.dispatch import ChannelDispatcher
from engine.channels.senders import EmailSender, SmtpConfig, WebhookSender
from engine.net.safe_http import SafeFetcher
from engine.stripe_gateway import StripeGateway
from engine.subscriptions import Subscriptions
from handlers.channels import channel_text
from wallets.vault import Vault
from wallets.vault_webhooks import WebhookSecrets


def build_subscriptions(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> Subscriptions | None:
    if not (settings.stripe_api_key and settings.stripe_webhook_secret):
        return None
    gateway = StripeGateway(settings.stripe_api_key.get_secret_value(), settings.stripe_api_url)
    return Subscriptions(
        sessions,
        gateway,
        settings.stripe_webhook_secret.get_secret_value(),
        settings.public_base(),
    )


def smtp_config(settings: Settings) -> SmtpConfig | None:
    if not settings.smtp_host:
        return None
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        sender=settings.smtp_from,
        starttls=settings.smtp_starttls,
        implicit_tls=settings.smtp_implicit_tls,
    )


def build_channels(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fetcher: SafeFetcher,
    vault: Vault | None = None,
) -> ChannelDispatcher:
    """Webhooks are signed with secrets sealed by the vault: without MAXXIT_MASTER_KEY
    none can be added or sent."""
    smtp = smtp_config(settings)
    return ChannelDispatcher(
        sessions,
        channel_text,
        EmailSender(smtp) if smtp else None,
        WebhookSender(fetcher),
        open_secret=WebhookSecrets(vault).open if vault is not None else None,
    )
