"""How a message leaves by email (SMTP, aiosmtplib) or by a user's webhook (HTTPS POST through
the SSRF-safe fetcher, signed so the receiver can tell it came from us)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from engine.net.safe_http import ResponseTooLarge, SafeFetcher, UnsafeURL

SIGNATURE_HEADER = "X-Maxxit-Signature"


class SendFailed(Exception):
    """This attempt failed; `permanent` ones are not retried (e.g. the URL is refused)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    sender: str = "Maxxit <alerts@localhost>"
    starttls: bool = True  # upgrade the connection before logging in (port 587)
    implicit_tls: bool = False  # TLS from the first byte (port 465)
    timeout: float = 20.0


class EmailSender:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, to: str, subject: str, body: str) -> None:
        c = self.config
        message = EmailMessage()
        message["From"] = c.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            await aiosmtplib.send(
                message,
                hostname=c.host,
                port=c.port,
                username=c.username,
                password=c.password,
                use_tls=c.implicit_tls,
                start_tls=c.starttls and not c.implicit_tls,
                timeout=c.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise SendFailed(f"recipient refused: {exc}", permanent=True) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendFailed(f"{type(exc).__name__}: {exc}") from None


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>." + body)>` (Stripe's scheme: the
    timestamp is signed too, so a receiver can refuse old replays)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookSender:
    def __init__(self, fetcher: SafeFetcher) -> None:
        self.fetcher = fetcher

    async def send(
        self, url: str, secret: str, delivery_id: int, kind: str, payload: dict[str, Any]
    ) -> None:
        now = int(time.time())
        body = json.dumps(
            {"id": delivery_id, "type": kind, "created": now, "data": payload},
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(secret, now, body),
            "X-Maxxit-Event": kind,
            "X-Maxxit-Delivery": str(delivery_id),  # the receiver's key against duplicates
        }
        try:
            result = await self.fetcher.request("POST", url, body, headers)
        except UnsafeURL as exc:
            raise SendFailed(f"refused: {exc.reason}", permanent=True) from None
        except ResponseTooLarge:
            raise SendFailed("response too large") from None
        except Exception as exc:  # network, TLS: try again later
            raise SendFailed(f"{type(exc).__name__}: {exc}"[:200]) from None
        if not 200 <= result.status < 300:
            raise SendFailed(f"HTTP {result.status}")
