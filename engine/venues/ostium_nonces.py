"""Nonces of a signing key shared by every replica (storage: signer_nonces), and sending the
agent key's transactions with them.

Two replicas sending for one agent key (one user's deployments of two agents, routed to two
replicas) would both read the same transaction count from the chain and sign the same nonce:
one transaction replaces or refuses the other. ostium-python-sdk reads the nonce itself inside
each call (`get_nonce`, the chain's latest count) and has no parameter for it, so the agent
key's transactions are built from the SDK's contract objects and signed here with eth-account,
with a nonce claimed from the database: one atomic UPDATE ... RETURNING, at least the chain's
pending count (raised when the key was used elsewhere), no lock held while the network is
called.

A claimed nonce is always either broadcast or given back:
- the node says the nonce is taken ("nonce too low", "replacement transaction underpriced":
  another transaction holds it): the row is raised to the chain's pending count and a new
  nonce claimed; the journal row is rewritten with it before the new send, so nothing is
  dropped and nothing goes twice;
- the send fails otherwise before the node took it: the nonce is given back if nobody claimed
  after it; if someone did (a gap the chain would wait on forever), the row is lowered to the
  chain's pending count, so the next claim fills the gap (a replica holding a nonce above it
  then meets "taken" and claims again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from web3 import Web3
from web3.exceptions import TimeExhausted

from storage.bulk import _insert
from storage.models import SignerNonce

log = logging.getLogger(__name__)
TAKEN = ("nonce too low", "replacement transaction underpriced", "already used")
ATTEMPTS = 5


def nonce_taken(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(t in text for t in TAKEN)


class NonceBook:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], chain_id: int) -> None:
        self.sessions = sessions
        self.chain_id = chain_id

    def _row(self, signer: str) -> tuple[Any, ...]:
        return (SignerNonce.signer == signer.lower(), SignerNonce.chain_id == self.chain_id)

    async def claim(self, signer: str, chain_pending: int) -> int:
        """The signer's next nonce (at least the chain's pending count), taken for us."""
        async with self.sessions() as s, s.begin():
            await s.execute(
                _insert(s, SignerNonce.__table__)
                .values(signer=signer.lower(), chain_id=self.chain_id, next_nonce=chain_pending)
                .on_conflict_do_nothing()
            )
            greatest = func.greatest if s.bind.dialect.name == "postgresql" else func.max
            taken = await s.execute(
                update(SignerNonce)
                .where(*self._row(signer))
                .values(next_nonce=greatest(SignerNonce.next_nonce, chain_pending) + 1)
                .returning(SignerNonce.next_nonce)
            )
            return int(taken.scalar_one()) - 1

    async def give_back(self, signer: str, nonce: int, chain_pending: int) -> None:
        """A nonce claimed and never broadcast: back if it was the last one claimed, else the
        row lowered to the chain's pending count (the gap is filled by the next claim)."""
        async with self.sessions() as s, s.begin():
            back = await s.execute(
                update(SignerNonce)
                .where(*self._row(signer), SignerNonce.next_nonce == nonce + 1)
                .values(next_nonce=nonce)
            )
            if back.rowcount == 0:
                await self.lower_to(s, signer, chain_pending)

    async def lower_to(self, s: AsyncSession, signer: str, chain_pending: int) -> None:
        await s.execute(
            update(SignerNonce)
            .where(*self._row(signer), SignerNonce.next_nonce > chain_pending)
            .values(next_nonce=chain_pending)
        )


Journal = Callable[[int, str], Awaitable[None]]  # (nonce, tx hash) written before the send


class Sender:
    """Builds, signs and broadcasts the agent key's calls with claimed nonces; broadcasts go to
    `submit_url` (our settings; never the SDK's default sequencer), the primary node if that
    fails before taking the transaction, as the SDK does."""

    def __init__(
        self, w3: Web3, submit_url: str, nonces: NonceBook, gas: int, max_fee: int, tip: int
    ) -> None:
        self.w3 = w3
        self.submit = w3 if submit_url == "" else Web3(Web3.HTTPProvider(submit_url))
        self.nonces = nonces
        self.fees = {"gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
        self.receipt_wait = 120.0

    async def send(self, signer: LocalAccount, call: Any, journal: Journal) -> Any:
        """The mined receipt (status unchecked: the caller checks it)."""
        address = signer.address
        for _ in range(ATTEMPTS):
            pending = await asyncio.to_thread(self.w3.eth.get_transaction_count, address, "pending")
            nonce = await self.nonces.claim(address, pending)
            tx = call.build_transaction(
                {"from": address, "chainId": self.nonces.chain_id, "nonce": nonce, **self.fees}
            )
            signed = signer.sign_transaction(tx)
            tx_hash = signed.hash.to_0x_hex()
            try:
                await journal(nonce, tx_hash)
            except BaseException:
                await self.nonces.give_back(address, nonce, pending)
                raise
            try:
                await asyncio.to_thread(self._broadcast, signed.raw_transaction)
            except Exception as exc:
                if "already known" in str(exc).lower():
                    pass  # this very transaction reached the node before (a retried send)
                elif nonce_taken(exc):
                    log.info("ostium: nonce %s of %s taken; claiming another", nonce, address)
                    continue
                else:
                    await self.nonces.give_back(address, nonce, pending)
                    raise
            return await self._receipt(address, nonce, tx_hash)
        raise RuntimeError(f"no free nonce for {address} after {ATTEMPTS} attempts")

    def _broadcast(self, raw: bytes) -> None:
        if self.submit is not self.w3:
            try:
                self.submit.eth.send_raw_transaction(raw)
                return
            except Exception as exc:
                if nonce_taken(exc):
                    raise
                log.warning("ostium: submit endpoint failed (%r); the primary node", exc)
        self.w3.eth.send_raw_transaction(raw)

    async def _receipt(self, address: str, nonce: int, tx_hash: str) -> Any:
        try:
            return await asyncio.to_thread(
                self.w3.eth.wait_for_transaction_receipt, tx_hash, self.receipt_wait
            )
        except TimeExhausted:
            # waiting on a nonce below ours nobody will send (a gap): the next claim fills it
            mined = await asyncio.to_thread(self.w3.eth.get_transaction_count, address, "latest")
            if mined < nonce:
                async with self.nonces.sessions() as s, s.begin():
                    await self.nonces.lower_to(s, address, mined)
            raise
