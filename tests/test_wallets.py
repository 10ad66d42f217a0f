"""Wallet linking with real EIP-4361 messages signed by eth-account, every refusal, and the
agent-key vault (AES-GCM under the master key, rotation, nothing leaked)."""

from __future__ import annotations

import base64
import logging
import os
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from sqlalchemy import select

from storage.models import Agent, AgentKey, Identity, User, Wallet
from tests.chat_helpers import sign_text
from wallets import siwe_link
from wallets.vault import (
    MasterKey,
    MissingMasterKey,
    Vault,
    VaultError,
    ensure_agent_key,
    load_agent,
    rotate,
)

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
CONFIG = siwe_link.SiweConfig("maxxit.example.com", "https://maxxit.example.com/connect")


async def user(sessions, name: str = "ann") -> int:
    async with sessions() as s, s.begin():
        u = User(display_name=name, settings={})
        s.add(u)
        await s.flush()
        return u.id


async def message_for(sessions, uid: int, account, chain_id: int = 1, now=NOW, config=CONFIG):
    async with sessions() as s, s.begin():
        token = await siwe_link.start_link(s, uid, now)
        issued = await siwe_link.issue_message(s, config, token, account.address, chain_id, now)
    assert isinstance(issued, tuple), issued
    return token, issued[1]


async def verify(sessions, message: str, signature: str, token=None, now=NOW, config=CONFIG):
    async with sessions() as s, s.begin():
        return await siwe_link.verify_and_link(s, config, message, signature, now, token)


async def test_a_signed_message_links_the_checksummed_address_once(sessions) -> None:
    uid = await user(sessions)
    wallet = Account.create()
    token, message = await message_for(sessions, uid, wallet)
    assert "maxxit.example.com wants you to sign in" in message and wallet.address in message
    outcome = await verify(sessions, message, sign_text(message, wallet), token)
    assert outcome.ok and outcome.address == wallet.address and outcome.user_id == uid
    replay = await verify(sessions, message, sign_text(message, wallet), token)
    assert (replay.ok, replay.reason) == (False, "nonce_used")
    async with sessions() as s:
        rows = (await s.execute(select(Wallet))).scalars().all()
    assert [(w.user_id, w.address) for w in rows] == [(uid, wallet.address)]


@pytest.mark.parametrize(
    "case, reason",
    [
        ("expired", "expired"),
        ("wrong_domain", "wrong_domain"),
        ("wrong_chain", "wrong_chain"),
        ("bad_signature", "bad_signature"),
        ("other_signer", "bad_signature"),
        ("garbage", "malformed"),
        ("unknown_nonce", "unknown_nonce"),
        ("other_token", "unknown_nonce"),
        ("not_yet_valid", "not_yet_valid"),
    ],
)
async def test_every_refusal_has_its_reason_and_links_nothing(sessions, case, reason) -> None:
    uid = await user(sessions)
    wallet = Account.create()
    token, message = await message_for(sessions, uid, wallet)
    signature = sign_text(message, wallet)
    now = NOW
    if case == "expired":
        now = NOW + timedelta(minutes=11)
    elif case == "wrong_domain":
        message = message.replace("maxxit.example.com wants", "evil.example.com wants")
        signature = sign_text(message, wallet)
    elif case == "wrong_chain":
        message = message.replace("Chain ID: 1", "Chain ID: 5")
        signature = sign_text(message, wallet)
    elif case == "bad_signature":
        signature = "0x" + "12" * 65
    elif case == "other_signer":
        signature = sign_text(message, Account.create())
    elif case == "garbage":
        message = "please link me"
    elif case == "unknown_nonce":
        message = message.replace(message.split("Nonce: ")[1].split("\n")[0], "abcdefgh12345678")
        signature = sign_text(message, wallet)
    elif case == "other_token":
        other_token, _ = await message_for(sessions, await user(sessions, "bob"), Account.create())
        token = other_token
    elif case == "not_yet_valid":
        message += "\nNot Before: 2026-11-24T13:00:00.000Z"
        signature = sign_text(message, wallet)
    outcome = await verify(sessions, message, signature, token, now=now)
    assert (outcome.ok, outcome.reason) == (False, reason)
    async with sessions() as s:
        assert (await s.execute(select(Wallet))).first() is None


async def test_link_token_expires_and_a_taken_address_is_refused(sessions) -> None:
    ann, bob = await user(sessions, "ann"), await user(sessions, "bob")
    async with sessions() as s, s.begin():  # Bob holds something: he is never merged away
        s.add(Agent(name="BobsAgent", venue="MULTI", stop_loss_pct=1, creator_user_id=bob))
    wallet = Account.create()
    async with sessions() as s, s.begin():
        token = await siwe_link.start_link(s, ann, NOW)
        late = await siwe_link.issue_message(
            s, CONFIG, token, wallet.address, 1, NOW + timedelta(minutes=16)
        )
        assert late == "link_expired"
        assert await siwe_link.issue_message(s, CONFIG, token, "0x1234", 1, NOW) == "bad_address"
    token, message = await message_for(sessions, ann, wallet)
    assert (await verify(sessions, message, sign_text(message, wallet), token)).ok
    token, message = await message_for(sessions, bob, wallet)
    taken = await verify(sessions, message, sign_text(message, wallet), token)
    assert (taken.ok, taken.reason) == (False, "address_taken")
    async with sessions() as s:
        assert (await s.execute(select(Wallet.user_id))).scalar_one() == ann
    # after Ann unlinks, Bob may link it
    async with sessions() as s, s.begin():
        assert await siwe_link.unlink(s, ann, NOW) == wallet.address
    token, message = await message_for(sessions, bob, wallet)
    assert (await verify(sessions, message, sign_text(message, wallet), token)).ok


async def test_the_same_wallet_from_an_empty_account_joins_the_two(sessions) -> None:
    """Ann's Discord account signs for the wallet her Telegram account linked: the signature
    proves she holds it, and the Discord account (holding nothing) joins the Telegram one."""
    ann_tg, ann_dc = await user(sessions, "ann"), await user(sessions, "ann")
    async with sessions() as s, s.begin():
        s.add(Identity(user_id=ann_tg, platform="telegram", external_id="1", chat_id="1"))
        s.add(Identity(user_id=ann_dc, platform="discord", external_id="2", chat_id="2"))
    wallet = Account.create()
    token, message = await message_for(sessions, ann_tg, wallet)
    assert (await verify(sessions, message, sign_text(message, wallet), token)).ok
    token, message = await message_for(sessions, ann_dc, wallet)
    forged = await verify(sessions, message, sign_text(message, Account.create()), token)
    assert (forged.ok, forged.reason) == (False, "bad_signature")
    token, message = await message_for(sessions, ann_dc, wallet)
    joined = await verify(sessions, message, sign_text(message, wallet), token)
    assert (joined.ok, joined.reason, joined.user_id) == (True, "joined", ann_tg)
    async with sessions() as s:
        owners = (await s.execute(select(Identity.platform, Identity.user_id))).all()
        wallets = (await s.execute(select(Wallet.user_id, Wallet.unlinked_at))).all()
    assert sorted(owners) == [("discord", ann_tg), ("telegram", ann_tg)]
    assert wallets == [(ann_tg, None)]


def master() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def test_vault_encrypts_agent_keys_and_rotates_without_leaking(sessions, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MissingMasterKey) as missing:
        Vault.from_env({})
    assert "MAXXIT_MASTER_KEY" in str(missing.value)
    with pytest.raises(VaultError):
        Vault.from_env({"MAXXIT_MASTER_KEY": "not-base64!"})
    first = master()
    vault = Vault.from_env({"MAXXIT_MASTER_KEY": first})
    uid = await user(sessions)
    async with sessions() as s, s.begin():
        address = await ensure_agent_key(s, vault, uid, "HYPERLIQUID")
        assert await ensure_agent_key(s, vault, uid, "HYPERLIQUID") == address  # one per venue
    async with sessions() as s:
        account = await load_agent(s, vault, uid, "HYPERLIQUID")
        row = (await s.execute(select(AgentKey))).scalar_one()
    assert account is not None and account.address == address
    secret = bytes(account.key)
    assert secret not in row.ciphertext and secret.hex() not in repr(vault)
    # a ciphertext moved to another row does not open
    async with sessions() as s, s.begin():
        other = await user(sessions, "bob")
        s.add(AgentKey(user_id=other, venue="HYPERLIQUID", address=address,
                       ciphertext=row.ciphertext, master_key_id=row.master_key_id))  # fmt: skip
    async with sessions() as s:
        with pytest.raises(VaultError) as tampered:
            await load_agent(s, vault, other, "HYPERLIQUID")
    assert secret.hex() not in str(tampered.value)

    # rotation: a new current key, the old one only decrypts until rotate re-seals
    second = master()
    rotated = Vault.from_env({"MAXXIT_MASTER_KEY": second, "MAXXIT_MASTER_KEYS_OLD": first})
    async with sessions() as s, s.begin():
        result = await rotate(s, rotated)
    assert result.rotated == 1 and len(result.unreadable) == 1  # the tampered row stays put
    only_new = Vault(MasterKey.parse(second))
    async with sessions() as s:
        again = await load_agent(s, only_new, uid, "HYPERLIQUID")
    assert again is not None and again.address == address
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert secret.hex() not in logged and first not in logged and second not in logged


async def test_a_link_is_one_time(sessions) -> None:
    uid = await user(sessions)
    wallet, other = Account.create(), Account.create()
    async with sessions() as s, s.begin():
        token = await siwe_link.start_link(s, uid, NOW)
        first = await siwe_link.issue_message(s, CONFIG, token, wallet.address, 1, NOW)
        second = await siwe_link.issue_message(s, CONFIG, token, other.address, 1, NOW)
    assert isinstance(first, tuple) and isinstance(second, tuple)
    assert (await verify(sessions, first[1], sign_text(first[1], wallet), token)).ok
    # the other message of the same link, issued before, links nothing now
    late = await verify(sessions, second[1], sign_text(second[1], other), token)
    assert (late.ok, late.reason) == (False, "link_used")
    async with sessions() as s, s.begin():
        again = await siwe_link.issue_message(s, CONFIG, token, other.address, 1, NOW)
    assert again == "link_used"
    async with sessions() as s:
        assert (await s.execute(select(Wallet.address))).scalars().all() == [wallet.address]
