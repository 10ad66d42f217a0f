"""Hyperliquid's refusal texts as our reason codes, which the alerts put into words
(locales: reason.*). Unknown texts keep a generic code; the text itself is stored on the
order row."""

from __future__ import annotations

from engine.venues.base import VenueRejected

_PATTERNS = [
    ("does not exist", "agent_not_approved"),
    ("minimum value of $10", "below_min_notional"),
    ("insufficient margin", "insufficient_margin"),
    ("could not immediately match", "no_liquidity"),
    ("reduce only order would increase", "reduce_only_increase"),
    ("invalid price", "invalid_price"),
    ("invalid size", "invalid_size"),
    # before "duplicate": HL's "Invalid nonce: duplicate nonce" refuses the whole action, so
    # the order never reached the book and may be sent again (replicas signing for one agent
    # key can meet in one millisecond)
    ("nonce", "bad_nonce"),
    ("duplicate", "duplicate_order"),
    ("leverage", "leverage_refused"),
    ("price too far from oracle", "price_too_far"),
]


def reason_for(text: str) -> str:
    lowered = text.lower()
    for needle, code in _PATTERNS:
        if needle in lowered:
            return code
    return "venue_refused"


# refusals that say nothing final about the order: a nonce refusal is of the whole request
# (the order never reached the book, sending it again is right); a duplicate cloid means the
# venue already has the order (an earlier send whose answer we lost, processed late), so the
# engine looks it up and adopts what it finds instead of writing it off
RETRYABLE = frozenset({"bad_nonce", "duplicate_order"})


def refusal(text: str) -> VenueRejected:
    """A whole-request refusal (`{"status": "err"}`) as the engine's exception."""
    reason = reason_for(text)
    return VenueRejected(reason, text, retryable=reason in RETRYABLE)
