"""Telegram Mini App `initData` validation, as Telegram specifies: the data-check string
(sorted key=value lines without `hash`) signed with HMAC-SHA256 under
HMAC-SHA256("WebAppData", bot token), and not older than a limit."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

MAX_AGE = timedelta(hours=1)


def sign_init_data(fields: dict[str, str], bot_token: str) -> str:
    """The hash Telegram puts in initData (used by tests to play Telegram's part)."""
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    return hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


def validate_init_data(
    init_data: str, bot_token: str, now: datetime, max_age: timedelta = MAX_AGE
) -> dict[str, Any] | None:
    """The Telegram user (id, language_code...) if initData is genuine and fresh, else None."""
    if not init_data or len(init_data) > 8192:
        return None
    fields = dict(parse_qsl(init_data, keep_blank_values=True, strict_parsing=False))
    given = fields.pop("hash", "")
    expected = sign_init_data(fields, bot_token)
    if not hmac.compare_digest(given, expected):
        return None
    try:
        auth_date = int(fields.get("auth_date", "0"))
        user = json.loads(fields.get("user", ""))
    except ValueError:
        return None
    age = now.timestamp() - auth_date
    if not -300 <= age <= max_age.total_seconds() or not isinstance(user, dict):
        return None
    return user if isinstance(user.get("id"), int) else None
