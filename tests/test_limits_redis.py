"""The abuse limits shared by replicas through Redis (REDIS_URL): a user flooding two replicas
is counted once across both, told once, and other users are untouched. CI has Redis on
127.0.0.1:6379; elsewhere the test skips when no Redis answers."""

from __future__ import annotations

import os
import socket
import uuid

import pytest
from limits.storage import storage_from_string

from handlers.limits import Admission, ChatLimits, LimitConfig, storage_uri

REDIS = os.environ.get("MAXXIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def replicas() -> tuple[ChatLimits, ChatLimits]:
    if not _redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail("Redis on 127.0.0.1:6379 is unreachable on CI")
        pytest.skip("no Redis on 127.0.0.1:6379")
    # a fresh key prefix: runs on one Redis never see each other's counters
    prefix = f"maxxit-test-{uuid.uuid4().hex}"
    config = LimitConfig(per_user="5 per 60 seconds", per_chat="100 per 60 seconds",
                         quiet="1 per 60 seconds", calls_per_agent="2 per hour")  # fmt: skip

    def replica() -> ChatLimits:
        return ChatLimits(config, storage_from_string(storage_uri(REDIS), key_prefix=prefix))

    return replica(), replica()


async def test_a_flood_over_two_replicas_is_counted_once(
    replicas: tuple[ChatLimits, ChatLimits],
) -> None:
    a, b = replicas
    seen = [await (a if i % 2 else b).admit("telegram", "flooder", f"c{i}") for i in range(12)]
    assert seen[:5] == [Admission.OK] * 5
    assert seen[5] is Admission.TOLD  # the sixth, wherever it lands, gets the one "slow down"
    assert set(seen[6:]) == {Admission.IGNORED}
    # someone else, on either replica, is served
    assert await a.admit("telegram", "calm", "c-calm") is Admission.OK
    assert await b.admit("telegram", "calm", "c-calm") is Admission.OK


async def test_call_rate_is_shared_by_replicas(replicas: tuple[ChatLimits, ChatLimits]) -> None:
    a, b = replicas
    first, second, third = await a.call(7), await b.call(7), await a.call(7)
    assert (first.allowed, first.used) == (True, 1)
    assert (second.allowed, second.used) == (True, 2)
    assert not third.allowed and third.retry_after > 0
    assert (await b.call(8)).allowed  # another agent has its own budget
