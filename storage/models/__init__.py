"""Every table of the domain; importing this module registers them all on `Base.metadata`."""

from storage.models.agents import Agent, AgentDailyMetric, Deployment, Source, agent_sources
from storage.models.analytics import AnalyticsProgress, DeploymentDailyMetric
from storage.models.base import Base
from storage.models.coordination import InstallationSetting, Lease, SendBudgetSlot
from storage.models.money import FundingPaymentRow
from storage.models.ops import AuditLog, OutboxMessage, ProcessedEvent
from storage.models.profit_share import ProfitShareClose
from storage.models.protection import ProtectiveOrder
from storage.models.signals import ClassificationRow, Post, RoutingDecision, Signal
from storage.models.trading import LedgerEntry, Order, Position
from storage.models.users import (
    AgentKey,
    Conversation,
    Identity,
    SiweNonce,
    Subscription,
    User,
    Wallet,
)

__all__ = [
    "Agent",
    "AgentDailyMetric",
    "AgentKey",
    "AnalyticsProgress",
    "AuditLog",
    "Base",
    "ClassificationRow",
    "Conversation",
    "Deployment",
    "DeploymentDailyMetric",
    "FundingPaymentRow",
    "Identity",
    "InstallationSetting",
    "Lease",
    "LedgerEntry",
    "Order",
    "OutboxMessage",
    "Position",
    "Post",
    "ProcessedEvent",
    "ProfitShareClose",
    "ProtectiveOrder",
    "RoutingDecision",
    "SendBudgetSlot",
    "Signal",
    "SiweNonce",
    "Source",
    "Subscription",
    "User",
    "Wallet",
    "agent_sources",
]
