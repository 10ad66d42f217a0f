"""`maxxit replay` and `maxxit demo` with what people really feed them: every malformed
scenario gets one clear error naming the field (no traceback, no memory blow-up), and a
reader that stops early (`| head`) ends the run quietly."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from bot.cli import main

DEMO = json.loads(resources.files("bot").joinpath("scenarios/demo.json").read_text("utf-8"))


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "scenario.json"
    path.write_bytes(data)
    return path


def _with(change) -> bytes:  # type: ignore[no-untyped-def]
    scenario = json.loads(json.dumps(DEMO))
    change(scenario)
    return json.dumps(scenario).encode()


def _set(path: str, value: object):  # type: ignore[no-untyped-def]
    def change(scenario: dict) -> None:  # type: ignore[type-arg]
        target = scenario
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return change


CASES = [
    ("deep", b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),
    ("latin1", '{"agents": [{"name": "Señal"}]}'.encode("latin-1"), "not UTF-8 text"),
    ("date_far", _with(_set("prices.0.ts", "9999-12-31T23:59:59-12:00")), "prices[0].ts"),
    ("date_early", _with(_set("posts.0.posted_at", "0001-01-01T00:00:00+05:00")), "posts[0]"),
    ("collateral", _with(_set("users.0.deployments.0.collateral_usd", 1e30)), "collateral_usd"),
    ("tiny_price", _with(_set("prices.0.price", 1e-30)), "prices[0].price"),
]


@pytest.mark.parametrize(("name", "data", "named"), CASES, ids=[c[0] for c in CASES])
def test_a_malformed_scenario_is_one_clear_error(tmp_path, capsys, name, data, named) -> None:  # type: ignore[no-untyped-def]
    assert main(["replay", str(_write(tmp_path, data))]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err, err


def test_a_huge_exponent_is_refused_without_reading_it_as_a_number(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    text = json.dumps(DEMO).replace('"price": "3050"', '"price": 1e999999999', 1)
    assert "1e999999999" in text
    assert main(["replay", str(_write(tmp_path, text.encode()))]) == 2
    err = capsys.readouterr().err
    assert "prices[" in err and "price" in err and "Traceback" not in err


def test_a_utf16_file_with_its_bom_is_read(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, json.dumps(DEMO).encode("utf-16"))
    assert main(["replay", str(path), "--json"]) == 0
    assert '"positions"' in capsys.readouterr().out


def test_a_reader_that_stops_early_ends_the_demo_quietly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head` gone before anything was written
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 0, err
    assert "BrokenPipe" not in err and "Traceback" not in err
