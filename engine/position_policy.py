"""Position policy: what a signal does in a market where the deployment already holds a
position. A venue account holds one net position per market (Hyperliquid nets by coin, and
so does the paper venue), so a second order in that market changes the position already
there: the agent's policy decides it on purpose, and the decision is stored with its reason.

- ignore: skip the signal.
- add: a same-side signal adds to the position while the collateral held in the market stays
  within `add_cap_multiple` x the deployment's collateral; an opposite one is skipped.
- close: an opposite signal closes the position; a same-side one is skipped.
- flip: an opposite signal closes the position, then opens the new side (the open waits
  for the close to fill: engine/fills.py releases it); a same-side one is skipped.

An add is its own position row (its own signal, entry, stops and PnL): the venue nets them
into one, our rows sum to it, and a reduce-only close never takes more than the venue holds
(both venues shrink it to the holding), so closes can never exceed what is there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from storage.enums import PositionPolicy

OPEN, SKIP, ADD, CLOSE, FLIP = "open", "skip", "add", "close", "flip"

# reason codes stored on the order row (error) and alerted (locales: reason.*)
HELD_IGNORE = "position_held"  # policy ignore: the market is held already
HELD_SAME_SIDE = "same_side_held"  # close / flip: the signal agrees with the position
HELD_OTHER_SIDE = "other_side_held"  # add: the signal is against the position
ADD_CAP = "add_cap_reached"  # add: beyond the cap on collateral in the market
IN_FLIGHT = "order_in_flight"  # an order in the market is not settled yet
OTHER_AGENT = "held_by_other_agent"  # another deployment holds it on this account
CLOSED_INSTEAD = "closed_opposite"  # close: the position was closed, nothing opened


@dataclass(frozen=True, slots=True)
class Held:
    """An open position in the signal's market on the deployment's account."""

    position_id: int
    deployment_id: int
    side: str
    size: Decimal
    entry_price: Decimal
    leverage: Decimal

    @property
    def collateral(self) -> Decimal:
        return self.size * self.entry_price / self.leverage if self.leverage else Decimal(0)


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # OPEN, SKIP, ADD, CLOSE, FLIP
    reason: str | None = None  # why, for SKIP (and CLOSE: nothing opened)
    position_ids: tuple[int, ...] = ()  # the held positions it acts on


# what `decide` answers for a deployment holding nothing and with nothing in flight
JUST_OPEN = Decision(OPEN)


def decide(
    policy: str,
    side: str,
    deployment_id: int,
    collateral: Decimal,
    cap_multiple: Decimal,
    held: Iterable[Held],
    in_flight: bool,
) -> Decision:
    """The decision for one deployment; `held` is every open position in the market on the
    deployment's account (another deployment's included), `in_flight` whether an order of
    this deployment in that market is written and not settled."""
    held = list(held)
    if any(h.deployment_id != deployment_id for h in held):
        return Decision(SKIP, OTHER_AGENT)  # never change another agent's position
    if in_flight:
        return Decision(SKIP, IN_FLIGHT)  # what it will hold is not known yet
    if not held:
        return JUST_OPEN
    ids = tuple(h.position_id for h in held)
    same = all(h.side == side for h in held)
    if policy == PositionPolicy.ADD:
        if not same:
            return Decision(SKIP, HELD_OTHER_SIDE, ids)
        if sum((h.collateral for h in held), Decimal(0)) + collateral > cap_multiple * collateral:
            return Decision(SKIP, ADD_CAP, ids)
        return Decision(ADD, None, ids)
    if policy in (PositionPolicy.CLOSE, PositionPolicy.FLIP):
        if same:
            return Decision(SKIP, HELD_SAME_SIDE, ids)
        if policy == PositionPolicy.FLIP and len(held) == 1:
            return Decision(FLIP, None, ids)
        # close, or a flip over several rows (books from before netting): close them all
        return Decision(CLOSE, CLOSED_INSTEAD, ids)
    return Decision(SKIP, HELD_IGNORE, ids)
