"""Deterministic client order ids: the same (installation, signal, deployment, purpose) always
yields the same id, so a retry, a restart or a second replica can only ever refer to the one
order; the installation's random namespace (created once, kept in the database) keeps two
databases trading one venue account (a reset, a staging copy) from ever colliding.

The format is Hyperliquid's `cloid` (0x + 32 hex digits), which other venues accept as text.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.bulk import insert_ignore
from storage.models import InstallationSetting

NAMESPACE_KEY = "cloid_namespace"


def client_order_id(namespace: str, signal_id: int, deployment_id: int, purpose: str) -> str:
    text = f"maxxit:{namespace}:{signal_id}:{deployment_id}:{purpose}"
    return "0x" + hashlib.sha256(text.encode()).hexdigest()[:32]


async def cloid_namespace(session: AsyncSession) -> str:
    """This installation's namespace; made on first use where the migration did not (the
    first of two racing replicas wins, the other reads it)."""
    await insert_ignore(
        session, InstallationSetting, [{"key": NAMESPACE_KEY, "value": secrets.token_hex(16)}]
    )
    return (
        await session.execute(
            select(InstallationSetting.value).where(InstallationSetting.key == NAMESPACE_KEY)
        )
    ).scalar_one()
