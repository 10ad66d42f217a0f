"""The whole pipeline through `maxxit replay`: every figure checked against the written rules,
on SQLite and (when MAXXIT_TEST_DATABASE_URL is set) on PostgreSQL."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from pathlib import Path

import pytest

from bot.cli import main
from engine.replay.runner import run_scenario
from engine.replay.scenario import parse_scenario
from tests.replay_helpers import PG_URL, agent, expected_trade, scenario

D = Decimal
T = "2026-11-20T10:{:02d}:00Z"


def _by_market(result: dict) -> dict[str, dict]:
    return {p["market"]: p for p in result["positions"]}


async def test_trailing_stop_long_matches_the_rules_to_the_last_digit() -> None:
    sc = scenario(
        fees={"taker_bps": "10", "slippage_bps": "20"},
        agents=[agent(creator="carol")],
        users=[
            {
                "name": "alice",
                "deployments": [
                    {"agent": "Hawk", "collateral_usd": "100", "leverage": "10", "mode": "live"}
                ],
            },
            {"name": "carol"},
        ],
        posts=[{"id": "1", "source": "@hawk", "text": "Long $ETH now", "posted_at": T.format(1)}],
        prices=[{"ts": T.format(0), "market": "ETH", "price": p} for p in ["2000"]]
        + [
            {"ts": T.format(i + 2), "market": "ETH", "price": p}
            for i, p in enumerate(["2050", "2070", "2100", "2058.5", "2058"])
        ],
    )
    out = (await run_scenario(sc, PG_URL)).as_json()
    [p] = out["positions"]
    # leverage = min(deployment 10, agent 5, market 50); size = 100 x 5 / 2000, 4 decimals
    size = D("0.25")
    want = expected_trade("2000", "2058", "long", size, "10", "20")
    assert (p["agent"], p["user"], p["side"], p["venue"]) == (
        "Hawk",
        "alice",
        "long",
        "HYPERLIQUID",
    )
    assert D(p["size"]) == size
    assert D(p["entry_price"]) == want["entry"] == D("2004")
    # activation at 2004 x 1.03 = 2064.12 (seen at 2070); peak 2100 -> stop 2058
    assert p["close_reason"] == "trailing_stop"
    assert D(p["exit_price"]) == want["exit"]
    assert D(p["fees"]) == want["fees"]
    assert D(p["realized_pnl"]) == want["pnl"]
    assert sorted((e["kind"], e["beneficiary"], D(e["amount"])) for e in out["ledger"]) == [
        ("creator_share", "creator:Hawk", want["pnl"] * D("0.10")),
        ("source_share", "source:@hawk", want["pnl"] * D("0.10")),
    ]
    assert out["routing"] == [
        {
            "signal": 1,
            "agent": "Hawk",
            "post": "1",
            "market": "ETH",
            "side": "long",
            "venue": "HYPERLIQUID",
            "reason": "listed",
        }
    ]


async def test_stop_loss_gap_take_profit_and_end_of_replay() -> None:
    sc = scenario(
        fees={"taker_bps": "5", "slippage_bps": "0"},
        agents=[
            agent(
                take_profit_pct="0.04", trailing_activation_pct="0.50", trailing_distance_pct="0.1"
            )
        ],
        users=[
            {
                "name": "bob",
                "deployments": [{"agent": "Hawk", "collateral_usd": "1000", "leverage": "2"}],
            }
        ],
        posts=[
            {"id": "a", "source": "@hawk", "text": "Short $BTC here", "posted_at": T.format(1)},
            {"id": "b", "source": "@hawk", "text": "Long $SOL", "posted_at": T.format(1)},
            {"id": "c", "source": "@hawk", "text": "Long $ETH", "posted_at": T.format(1)},
        ],
        prices=[
            {"ts": T.format(0), "market": "BTC", "price": "50000"},
            {"ts": T.format(0), "market": "SOL", "price": "100"},
            {"ts": T.format(0), "market": "ETH", "price": "2000"},
            {"ts": T.format(2), "market": "BTC", "price": "52000"},  # below the stop (52500)
            {"ts": T.format(3), "market": "BTC", "price": "56000"},  # gaps far through it
            {"ts": T.format(3), "market": "SOL", "price": "104"},  # take profit at 104
            {"ts": T.format(4), "market": "ETH", "price": "2010"},  # never closes
        ],
    )
    got = _by_market((await run_scenario(sc, PG_URL)).as_json())
    assert got["BTC"]["close_reason"] == "stop_loss"
    assert D(got["BTC"]["exit_price"]) == D("56000")  # the gap price, not the stop level
    btc = expected_trade("50000", "56000", "short", D("0.04"), "5", "0")
    assert D(got["BTC"]["realized_pnl"]) == btc["pnl"] < 0
    assert got["SOL"]["close_reason"] == "take_profit"
    assert D(got["SOL"]["exit_price"]) == D("104")
    assert got["ETH"]["close_reason"] == "end_of_replay"
    assert D(got["ETH"]["exit_price"]) == D("2010")  # the market's last price


async def test_prices_before_posts_at_equal_times_and_no_price_rejection() -> None:
    sc = scenario(
        fees={"taker_bps": "0", "slippage_bps": "0"},
        agents=[agent(venue="MULTI", venue_preference=["HYPERLIQUID", "OSTIUM"])],
        users=[
            {
                "name": "u",
                "deployments": [{"agent": "Hawk", "collateral_usd": "100", "leverage": "1"}],
            }
        ],
        posts=[
            {"id": "1", "source": "@hawk", "text": "Long $ETH", "posted_at": T.format(5)},
            {"id": "2", "source": "@hawk", "text": "Long $SOL", "posted_at": T.format(5)},
            {"id": "3", "source": "@hawk", "text": "Short gold, $XAU", "posted_at": T.format(6)},
        ],
        # the ETH price at the post's own time comes first; SOL never has a price
        prices=[
            {"ts": T.format(0), "market": "ETH", "price": "1000"},
            {"ts": T.format(5), "market": "ETH", "price": "1100"},
            {"ts": T.format(0), "market": "XAU", "price": "2600"},
        ],
    )
    out = (await run_scenario(sc, PG_URL)).as_json()
    routing = {r["market"]: (r["venue"], r["reason"]) for r in out["routing"]}
    assert routing == {
        "ETH": ("HYPERLIQUID", "first_preference_listing"),
        "SOL": (None, "no_price"),
        "XAU": ("OSTIUM", "first_preference_listing"),
    }
    got = _by_market(out)
    assert D(got["ETH"]["entry_price"]) == D("1100")
    assert got["XAU"]["venue"] == "OSTIUM" and got["XAU"]["side"] == "short"
    assert "SOL" not in got


async def test_min_confidence_and_unfollowed_sources_make_no_signal() -> None:
    sc = scenario(
        agents=[agent(min_confidence="0.9")],
        users=[
            {
                "name": "u",
                "deployments": [{"agent": "Hawk", "collateral_usd": "100", "leverage": "1"}],
            }
        ],
        posts=[
            {
                "id": "1",
                "source": "@hawk",
                "text": "maybe long ETH?? idk",
                "posted_at": T.format(1),
            },
            {"id": "2", "source": "@hawk", "text": "bullish ETH", "posted_at": T.format(1)},
            {
                "id": "3",
                "source": "@other",
                "text": "Long $ETH, entry 2000 tp 2200 sl 1900",
                "posted_at": T.format(1),
            },
        ],
        prices=[{"ts": T.format(0), "market": "ETH", "price": "2000"}],
    )
    out = (await run_scenario(sc, PG_URL)).as_json()
    assert out == {"positions": [], "ledger": [], "routing": []}


def test_demo_json_runs_offline_quickly_and_exercises_every_exit(capsys) -> None:
    t0 = time.monotonic()
    assert main(["demo", "--json"]) == 0
    elapsed = time.monotonic() - t0
    out = json.loads(capsys.readouterr().out)
    reasons = {p["close_reason"] for p in out["positions"]}
    assert reasons == {"stop_loss", "take_profit", "trailing_stop", "end_of_replay"}
    assert {p["user"] for p in out["positions"]} == {"alice", "bob", "carol"}
    assert any(r["venue"] == "OSTIUM" and r["agent"] == "TrendHawk" for r in out["routing"])
    assert any(r["venue"] is None for r in out["routing"])
    assert {e["kind"] for e in out["ledger"]} == {"creator_share", "source_share"}
    assert all(p["exit_price"] is not None for p in out["positions"])
    assert elapsed < 30


def test_demo_readable_log_has_a_summary(capsys) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    # a trader's words, not the engine's codes
    assert "TrendHawk trades it on Ostium (its first-choice venue that lists XAU)" in out
    assert "not a trade call (question)" in out
    assert "Positions" in out and "total pnl" in out and "Profit share" in out
    for code in ("first_preference_listing", "end_of_replay", "creator:"):
        assert code not in out
    assert "PerpSniper's creator received $" in out
    # per-user totals with the return on the margin put up
    per_user = out.split("Per user")[1].split("Profit share")[0]
    assert "margin used" in per_user and "return" in per_user
    assert re.search(r"bob\s+\d+\s+\d+\s+\$[\d,.]+\s+[+-]\$[\d,.]+\s+[+-]\d+\.\d\d%", per_user)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON (line 1"),
        (
            '{"agents": [{"name": "a", "sources": ["@x"], "venue": "BINANCE", '
            '"risk": {"stop_loss_pct": 0.02}}]}',
            "agents[0].venue",
        ),
        (
            '{"agents": [{"name": "a", "sources": ["@x"], "venue": "MULTI", '
            '"risk": {"stop_loss_pct": 0.02}}], "users": [{"name": "u", "deployments": '
            '[{"agent": "zzz", "collateral_usd": 10, "leverage": 2}]}]}',
            "users[0].deployments[0].agent: unknown agent 'zzz'",
        ),
        (
            '{"agents": [{"name": "a", "sources": ["@x"], "venue": "MULTI", '
            '"risk": {"stop_loss_pct": 0.02}}], "prices": [{"ts": "yesterday", "market": "BTC", '
            '"price": -5}]}',
            "prices[0].price: Input should be greater than 0",
        ),
        (
            '{"agents": [{"name": "a", "sources": ["@x"], "venue": "MULTI", '
            '"risk": {"stop_loss_pct": 0.02, "trailing_activation_pct": 0.01}}]}',
            "give both or neither",
        ),
        ('{"agents": []}', "agents: List should have at least 1 item"),
    ],
)
def test_bad_scenario_files_name_the_field(tmp_path, capsys, content: str, message: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    assert main(["replay", str(f), "--json"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_missing_scenario_file(tmp_path, capsys) -> None:
    assert main(["replay", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


DOC = Path(__file__).resolve().parents[1] / "docs" / "replay.md"


async def test_the_documented_example_gives_the_documented_figures() -> None:
    doc = DOC.read_text()
    example = doc.split("## Example\n\n```json\n")[1].split("```")[0]
    out = (await run_scenario(parse_scenario(example, "docs/replay.md"), PG_URL)).as_json()
    [p] = out["positions"]
    assert (p["exit_price"], p["fees"], p["realized_pnl"]) == ("2053.884", "1.014471", "11.456529")
    assert [e["amount"] for e in out["ledger"]] == ["1.1456529", "1.1456529"]


def test_posts_can_come_from_a_jsonl_file_next_to_the_scenario(tmp_path, capsys) -> None:
    (tmp_path / "posts.jsonl").write_text(
        '{"id": "1", "source": "@hawk", "text": "Long $ETH", "posted_at": "2026-11-20T10:01:00"}\n'
        "\n"
        '{"id": "2", "source": "@hawk", "text": "gm", "posted_at": "2026-11-20T10:02:00Z"}\n'
    )
    sc = {
        "agents": [agent()],
        "users": [
            {
                "name": "u",
                "deployments": [{"agent": "Hawk", "collateral_usd": "100", "leverage": "1"}],
            }
        ],
        "posts_file": "posts.jsonl",
        "prices": [{"ts": "2026-11-20T10:00:00Z", "market": "ETH", "price": "2000"}],
    }
    (tmp_path / "s.json").write_text(json.dumps(sc))
    assert main(["replay", str(tmp_path / "s.json"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(p["market"], p["close_reason"]) for p in out["positions"]] == [
        ("ETH", "end_of_replay")
    ]

    (tmp_path / "posts.jsonl").write_text('{"id": "1", "source": "@hawk", "text": "x"}\n')
    assert main(["replay", str(tmp_path / "s.json")]) == 2
    assert "posts.jsonl:1: missing posted_at" in capsys.readouterr().err
