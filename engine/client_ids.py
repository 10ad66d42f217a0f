"""Deterministic client order ids: the same (signal, deployment, purpose) always yields the
same id, so a retry or a restart can only ever refer to the one order.

The format is Hyperliquid's `cloid` (0x + 32 hex digits), which other venues accept as text.
"""

from __future__ import annotations

import hashlib


def client_order_id(signal_id: int, deployment_id: int, purpose: str) -> str:
    digest = hashlib.sha256(f"maxxit:{signal_id}:{deployment_id}:{purpose}".encode()).hexdigest()
    return "0x" + digest[:32]
