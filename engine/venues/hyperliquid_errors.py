"""Hyperliquid's refusal texts as our reason codes, which the alerts put into words
(locales: reason.*). Unknown texts keep a generic code; the text itself is stored on the
order row."""

from __future__ import annotations

_PATTERNS = [
    ("does not exist", "agent_not_approved"),
    ("minimum value of $10", "below_min_notional"),
    ("insufficient margin", "insufficient_margin"),
    ("could not immediately match", "no_liquidity"),
    ("reduce only order would increase", "reduce_only_increase"),
    ("invalid price", "invalid_price"),
    ("invalid size", "invalid_size"),
    ("duplicate", "duplicate_order"),
    ("leverage", "leverage_refused"),
    ("nonce", "bad_nonce"),
    ("price too far from oracle", "price_too_far"),
]


def reason_for(text: str) -> str:
    lowered = text.lower()
    for needle, code in _PATTERNS:
        if needle in lowered:
            return code
    return "venue_refused"
