"""Hyperliquid agent (API wallet) approval: the user's own wallet signs Hyperliquid's
`approveAgent` user-signed action for the agent key Maxxit holds; we submit it to /exchange
and trust it only once `/info extraAgents` lists the agent.

The typed data is built with the SDK's own `user_signed_payload`, so what the user's wallet
signs is byte for byte what Hyperliquid verifies. The agent can trade for the account but
cannot withdraw.
"""

from __future__ import annotations

from typing import Any

import httpx
from eth_utils import to_checksum_address
from hyperliquid.utils.signing import user_signed_payload

AGENT_NAME = "maxxit"
PRIMARY_TYPE = "HyperliquidTransaction:ApproveAgent"
TYPES = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "agentAddress", "type": "address"},
    {"name": "agentName", "type": "string"},
    {"name": "nonce", "type": "uint64"},
]
ARBITRUM_CHAIN_ID = "0xa4b1"  # the chain the user's wallet signs on; any chain is accepted


def approve_action(agent_address: str, nonce_ms: int, is_mainnet: bool) -> dict[str, Any]:
    return {
        "type": "approveAgent",
        "hyperliquidChain": "Mainnet" if is_mainnet else "Testnet",
        "signatureChainId": ARBITRUM_CHAIN_ID,
        "agentAddress": to_checksum_address(agent_address),
        "agentName": AGENT_NAME,
        "nonce": nonce_ms,
    }


def typed_data(action: dict[str, Any]) -> dict[str, Any]:
    """What the user's wallet signs with eth_signTypedData_v4."""
    return user_signed_payload(PRIMARY_TYPE, TYPES, dict(action))


def split_signature(signature: str) -> dict[str, Any]:
    raw = bytes.fromhex(signature.removeprefix("0x"))
    if len(raw) != 65:
        raise ValueError("a signature is 65 bytes")
    v = raw[64] if raw[64] >= 27 else raw[64] + 27
    return {"r": "0x" + raw[:32].hex(), "s": "0x" + raw[32:64].hex(), "v": v}


async def submit_approval(
    base_url: str, action: dict[str, Any], signature: str, client: httpx.AsyncClient | None = None
) -> tuple[bool, str]:
    """Post the signed approval to /exchange: (accepted, Hyperliquid's answer)."""
    body = {"action": action, "nonce": action["nonce"], "signature": split_signature(signature)}
    own = client is None
    client = client or httpx.AsyncClient(timeout=10)
    try:
        response = await client.post(f"{base_url.rstrip('/')}/exchange", json=body)
    finally:
        if own:
            await client.aclose()
    try:
        answer = response.json()
    except ValueError:
        return False, response.text[:200]
    if isinstance(answer, dict) and answer.get("status") == "ok":
        return True, "ok"
    text = answer.get("response") if isinstance(answer, dict) else answer
    return False, str(text)[:300]


async def is_approved(
    base_url: str, user: str, agent_address: str, client: httpx.AsyncClient | None = None
) -> bool:
    own = client is None
    client = client or httpx.AsyncClient(timeout=10)
    try:
        response = await client.post(
            f"{base_url.rstrip('/')}/info", json={"type": "extraAgents", "user": user}
        )
        agents = response.json()
    finally:
        if own:
            await client.aclose()
    wanted = agent_address.lower()
    return any(str(a.get("address", "")).lower() == wanted for a in agents or [])
