"""Analytics: performance figures from our own positions (engine/analytics/figures.py), rolled
up per day (daily.py), read as track records (records.py), ranked for the marketplace
(ranking.py), routing statistics (routing.py) and pictures (charts.py)."""

from engine.analytics.stats import AgentStats, agent_stats

__all__ = ["AgentStats", "agent_stats"]
