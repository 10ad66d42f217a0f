"""Every table of the domain; importing this module registers them all on `Base.metadata`."""

from storage.models.accounts import AccountLinkCode
from storage.models.agents import Agent, AgentDailyMetric, Deployment, Source, agent_sources
from storage.models.analytics import AgentSummary, AnalyticsProgress, DeploymentDailyMetric
from storage.models.base import Base
from storage.models.billing import (
    AgentPrice,
    ChannelDelivery,
    NotificationChannel,
    SubscriptionPayment,
)
from storage.models.coordination import InstallationSetting, Lease, SendBudgetSlot
from storage.models.key_rotation import AgentKeyRotation
from storage.models.money import FundingPaymentRow
from storage.models.monitor import TradeMonitor
from storage.models.ops import AuditLog, OutboxMessage, ProcessedEvent
from storage.models.ostium import OstiumRequest, SignerNonce
from storage.models.profit_share import ProfitShareClose
from storage.models.protection import ProtectiveOrder
from storage.models.signals import ClassificationRow, Post, RoutingDecision, Signal
from storage.models.trading import LedgerEntry, Order, Position
from storage.models.users import (
    AgentKey,
    ChatChange,
    Conversation,
    Identity,
    SiweNonce,
    Subscription,
    User,
    Wallet,
)

__all__ = [
    "AccountLinkCode",
    "Agent",
    "AgentDailyMetric",
    "AgentKey",
    "AgentKeyRotation",
    "AgentPrice",
    "AgentSummary",
    "AnalyticsProgress",
    "AuditLog",
    "Base",
    "ChannelDelivery",
    "ChatChange",
    "ClassificationRow",
    "Conversation",
    "Deployment",
    "DeploymentDailyMetric",
    "FundingPaymentRow",
    "Identity",
    "InstallationSetting",
    "Lease",
    "LedgerEntry",
    "NotificationChannel",
    "Order",
    "OstiumRequest",
    "OutboxMessage",
    "Position",
    "Post",
    "ProcessedEvent",
    "ProfitShareClose",
    "ProtectiveOrder",
    "RoutingDecision",
    "SendBudgetSlot",
    "Signal",
    "SignerNonce",
    "SiweNonce",
    "Source",
    "Subscription",
    "SubscriptionPayment",
    "TradeMonitor",
    "User",
    "Wallet",
    "agent_sources",
]
