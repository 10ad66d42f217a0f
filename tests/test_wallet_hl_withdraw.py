"""The chat tells users Maxxit's Hyperliquid key "can trade, never withdraw" (deploy.need_approval,
alert.agent_approved, the connect page). Proved here with the unmodified hyperliquid-python-sdk
against the stand-in, which verifies withdraw3 the way Hyperliquid does: the action is
user-signed and withdraws from the signer's own account, so an agent key cannot move funds."""

from __future__ import annotations

from decimal import Decimal

import eth_account

from handlers.i18n import t
from tests.peers.hyperliquid_api import HyperliquidPeer
from tests.test_hyperliquid_peer import IOC, Sdk, Trader, call, peer, sdk, statuses, trader  # noqa: F401


async def balance(who: Trader) -> tuple[Decimal, Decimal]:
    state = await call(who.info.user_state, who.address)
    return Decimal(state["marginSummary"]["accountValue"]), Decimal(state["withdrawable"])


def test_the_claim_under_test_is_what_users_read() -> None:
    for key in ("deploy.need_approval", "alert.agent_approved"):
        assert "never withdraw" in t("en", key, agent="0x1", address="0x1", url="u")


async def test_the_agent_key_can_trade_but_its_withdrawal_is_refused(
    peer: HyperliquidPeer,  # noqa: F811
    trader: Trader,  # noqa: F811
) -> None:
    thief = eth_account.Account.create().address
    before = await balance(trader)
    assert before == (Decimal(1000), Decimal(1000))

    # signed by Maxxit's agent key, for the user's account: refused, nothing moves
    answer = await call(trader.exchange.withdraw_from_bridge, 500, thief)
    assert answer["status"] == "err", answer
    assert trader.agent.address.lower() in answer["response"]
    assert await balance(trader) == before
    assert peer.book.account(thief) is None

    # the same key trades on that account: the agent is approved and working
    placed = await call(trader.exchange.order, "ETH", True, 0.1, 2100, IOC)
    assert "filled" in statuses(placed)[0]
    assert peer.positions(trader.address)["ETH"].szi == Decimal("0.1")


async def test_the_account_owner_can_withdraw(
    peer: HyperliquidPeer,  # noqa: F811
    trader: Trader,  # noqa: F811
    sdk: Sdk,  # noqa: F811
) -> None:
    """The refusal above is the signer check, not an unsimulated action: the owner's own
    signature withdraws, and only what is withdrawable."""
    owner = await sdk.exchange(trader.account, peer.base_url)
    answer = await call(owner.withdraw_from_bridge, 300, trader.address)
    assert answer == {"status": "ok", "response": {"type": "default"}}
    assert await balance(trader) == (Decimal(700), Decimal(700))
    too_much = await call(owner.withdraw_from_bridge, 701, trader.address)
    assert too_much["status"] == "err"
    assert await balance(trader) == (Decimal(700), Decimal(700))
