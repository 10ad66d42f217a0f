"""The marketplace order: agents ranked by their live record, risk-adjusted, once they have
enough trades to mean something; paper records are shown apart and never rank."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.analytics.records import Record
from storage.enums import DeploymentMode

# live trades of the agent's own (followers' manual closes excluded) in the window before it
# is ranked: one lucky trade must not put an agent on top
MIN_TRADES = 10


@dataclass(frozen=True, slots=True)
class Standing:
    agent_id: int
    live: Record | None
    paper: Record | None
    followers: int = 0

    @property
    def live_trades(self) -> int:
        return self.live.figures.trades if self.live else 0

    @property
    def ranked(self) -> bool:
        return self.live_trades >= MIN_TRADES

    @property
    def score(self) -> Decimal | None:
        """The risk-adjusted return: Sharpe ratio of the live daily returns."""
        return self.live.figures.sharpe if self.ranked and self.live else None


def _order(s: Standing) -> tuple:
    if s.ranked:
        assert s.live is not None
        score = s.score
        # ranked first, best score first; a record with no variation (no Sharpe) after those
        # with one, by its return
        return (0, score is None, -(score or 0), -s.live.figures.cumulative_return, s.agent_id)
    return (1, -s.live_trades, -s.followers, s.agent_id)


def rank(
    agent_ids: list[int],
    records: dict[tuple[int, str], Record],
    followers: dict[int, int] | None = None,
) -> list[Standing]:
    followers = followers or {}
    standings = [
        Standing(
            a,
            records.get((a, DeploymentMode.LIVE.value)),
            records.get((a, DeploymentMode.PAPER.value)),
            followers.get(a, 0),
        )
        for a in agent_ids
    ]
    return sorted(standings, key=_order)
