"""The Ostium venue on the local stand-in, through the unmodified SDK: two-step fills, the
opening fee and rollover from the chain's events, refusals in words (preflight), delegation,
and orders that outlive a crash or a keeper that never answers."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import pytest

from engine.venues.base import OrderRequest, OrderState, VenueRejected
from tests.ostium_helpers import funded_trader, venue_for
from tests.peers.ostium.peer import OstiumPeer

E6 = 10**6


def order(account: str, cloid: str, size: str = "0.25", **kw) -> OrderRequest:
    base = {"market": "XAU", "side": "long", "leverage": Decimal(5)}
    return OrderRequest(cloid, account, size=Decimal(size), **(base | kw))


def nonce(peer: OstiumPeer, address: str) -> int:
    return peer.w3.eth.get_transaction_count(address)


async def test_open_waits_for_the_keeper_and_pnl_matches_the_chain(sessions, ostium) -> None:
    trader = funded_trader(ostium, usdc="1000")
    venue = venue_for(ostium, sessions, [trader])
    await venue.refresh_markets()
    assert venue.markets()["XAU"].min_notional == Decimal(250)
    account = trader.user.address

    opened = await venue.place_order(order(account, "0x" + "1" * 32))
    # 0.25 XAU at 2000 with 5x: 100 USDC collateral; 0.04 % of 500 as the opening fee
    assert (opened.price, opened.size, opened.fee) == (
        Decimal(2000),
        Decimal("0.25"),
        Decimal("0.2"),
    )
    assert ostium.usdc_balance(account) == Decimal(900)

    ostium.set_price("XAU", "2100")
    closed = await venue.place_order(order(account, "0x" + "2" * 32, reduce_only=True))
    assert (closed.price, closed.size) == (Decimal(2100), Decimal("0.25"))
    # no closing fee; the rollover of the blocks the trade was open, charged at close
    assert closed.fee == 0 and closed.holding is not None and closed.holding < 0
    gross = (closed.price - opened.price) * opened.size
    realized = gross - opened.fee + closed.holding
    # what came back to the wallet, to the last digit
    assert ostium.usdc_balance(account) - Decimal(1000) == realized


async def test_below_the_minimum_is_refused_in_words_before_any_send(sessions, ostium) -> None:
    trader = funded_trader(ostium)
    venue = venue_for(ostium, sessions, [trader])
    await venue.refresh_markets()
    before = nonce(ostium, trader.agent.address)
    with pytest.raises(VenueRejected) as refused:
        await venue.place_order(order(trader.user.address, "0x" + "3" * 32, size="0.1"))
    assert refused.value.reason == "below_min_size"
    assert "below the minimum position size for XAU" in str(refused.value)
    assert nonce(ostium, trader.agent.address) == before  # nothing sent


async def test_a_revert_the_venue_did_not_foresee_is_decoded_from_the_chain(
    sessions, ostium
) -> None:
    # the user approved too little USDC: only the chain knows; the preflight tells why
    trader = funded_trader(ostium, approved="50")
    venue = venue_for(ostium, sessions, [trader])
    await venue.refresh_markets()
    with pytest.raises(VenueRejected) as refused:
        await venue.place_order(order(trader.user.address, "0x" + "4" * 32))
    assert refused.value.reason == "allowance_missing"
    assert "approve it on the connect page" in str(refused.value)


async def test_an_agent_without_delegation_is_refused(sessions, ostium) -> None:
    trader = funded_trader(ostium, delegated=False)
    venue = venue_for(ostium, sessions, [trader])
    await venue.refresh_markets()
    with pytest.raises(VenueRejected) as refused:
        await venue.place_order(order(trader.user.address, "0x" + "5" * 32))
    assert refused.value.reason == "delegation_missing"
    assert nonce(ostium, trader.agent.address) == 0


async def test_a_crash_before_the_keeper_fills_is_adopted_never_sent_twice(
    sessions, ostium
) -> None:
    trader = funded_trader(ostium)
    venue = venue_for(ostium, sessions, [trader], fill_wait=0.3)
    await venue.refresh_markets()
    ostium.keeper.hold = True
    cloid = "0x" + "6" * 32
    with pytest.raises(VenueRejected) as waiting:
        await venue.place_order(order(trader.user.address, cloid))
    assert waiting.value.retryable and waiting.value.reason == "pending"
    sent = nonce(ostium, trader.agent.address)

    restarted = venue_for(ostium, sessions, [trader])  # a new process, the same database
    await restarted.refresh_markets()
    assert (await restarted.look_up(trader.user.address, cloid)).state == OrderState.OPEN
    ostium.keeper.hold = False
    for _ in range(100):
        found = await restarted.look_up(trader.user.address, cloid)
        if found.state != OrderState.OPEN:
            break
        await asyncio.sleep(0.05)
    assert found.state == OrderState.FILLED and found.fill is not None
    assert found.fill.size == Decimal("0.25") and found.fill.fee == Decimal("0.2")
    assert nonce(ostium, trader.agent.address) == sent  # adopted, not sent again
    assert len(ostium.open_trades(trader.user.address)) == 1


async def test_a_journal_row_whose_transaction_never_left_allows_the_send(sessions, ostium) -> None:
    from engine.venues.ostium_requests import Request

    trader = funded_trader(ostium)
    venue = venue_for(ostium, sessions, [trader])
    await venue.refresh_markets()
    cloid = "0x" + "7" * 32
    at = ostium.w3.eth.block_number
    # a crash right after the journal was written, before the transaction went out
    await venue.journal.write(
        Request(cloid, "open", trader.user.address, trader.agent.address, 0, at, 2)
    )
    assert (await venue.look_up(trader.user.address, cloid)).state == OrderState.UNKNOWN
    await venue.place_order(order(trader.user.address, cloid))
    found = await venue.look_up(trader.user.address, cloid)
    assert found.state == OrderState.FILLED


async def test_an_order_the_keeper_never_answers_is_ended_by_the_timeout_call(
    sessions, ostium
) -> None:
    trader = funded_trader(ostium, usdc="1000")
    venue = venue_for(ostium, sessions, [trader], fill_wait=0.1, stuck_after=0)
    await venue.refresh_markets()
    ostium.keeper.hold = True
    cloid = "0x" + "8" * 32
    with pytest.raises(VenueRejected):
        await venue.place_order(order(trader.user.address, cloid))
    assert ostium.usdc_balance(trader.user.address) == Decimal(900)
    for _ in range(4):  # Ostium's timeout is counted in blocks: let a few pass
        ostium.w3.provider.make_request("evm_mine", [])
    assert (await venue.look_up(trader.user.address, cloid)).state == OrderState.OPEN
    found = await venue.look_up(trader.user.address, cloid)
    assert found.state == OrderState.CANCELED and "timed out" in found.detail
    assert ostium.usdc_balance(trader.user.address) == Decimal(1000)


async def test_a_keeper_cancel_refunds_and_is_reported(sessions, ostium) -> None:
    trader = funded_trader(ostium, usdc="1000")
    venue = venue_for(ostium, sessions, [trader])
    await venue.refresh_markets()
    ostium.keeper.cancel_next.append(2)
    with pytest.raises(VenueRejected) as refused:
        await venue.place_order(order(trader.user.address, "0x" + "9" * 32))
    assert refused.value.reason == "not_filled"
    assert "slippage" in str(refused.value)
    assert ostium.usdc_balance(trader.user.address) == Decimal(1000)


async def test_a_crash_after_the_send_before_its_receipt_finds_the_order_by_its_hash(
    sessions, ostium
) -> None:
    trader = funded_trader(ostium)
    venue = venue_for(ostium, sessions, [trader])
    await venue.refresh_markets()
    ostium.keeper.hold = True
    cloid, account = "0x" + "e" * 32, trader.user.address
    sdk, signer = await venue._trader_sdk(account)
    request, call = await venue._open_call(sdk, order(account, cloid), venue.pair("XAU"), signer)
    signed: list[str] = []

    async def journal(nonce: int, tx_hash: str) -> None:
        signed.append(tx_hash)
        await venue.journal.write(replace(request, nonce=nonce, tx_hash=tx_hash))

    # a signed transaction journaled and never broadcast (the process died in between): the
    # node never saw it, so it can never be mined: safe to send
    await journal(0, "0x" + "5" * 64)
    assert (await venue.look_up(account, cloid)).state == OrderState.UNKNOWN

    await venue._send(signer, call, journal)  # mined; the process dies before the receipt
    restarted = venue_for(ostium, sessions, [trader])
    await restarted.refresh_markets()
    found = await restarted.look_up(account, cloid)
    # found by the hash journaled before the broadcast, waiting for the keeper
    assert found.state == OrderState.OPEN
    assert (await restarted.journal.get(cloid)).tx_hash == signed[-1]
    assert (await restarted.journal.get(cloid)).order_id == 1
    ostium.keeper.hold = False
    for _ in range(100):
        found = await restarted.look_up(account, cloid)
        if found.state != OrderState.OPEN:
            break
        await asyncio.sleep(0.05)
    assert found.state == OrderState.FILLED and found.fill.venue_order_id == "1"
    assert ostium.contracts.ostium.functions.orderCounter().call() == 1
