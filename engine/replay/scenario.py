"""The replay scenario file: its schema, and errors that name the field at fault.

Numbers are read as Decimal straight from the JSON text (never through float).
"""

from __future__ import annotations

import codecs
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.ingest import JsonlFileSource

# every number finite and within what a market can mean: 1e30 dollars or a price of
# 1e999999999 is a typo, and Decimal arithmetic on such exponents eats gigabytes
Fraction = Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, le=Decimal("1e6"), allow_inf_nan=False)]
Dollars = Annotated[Decimal, Field(gt=0, le=Decimal("1e9"), allow_inf_nan=False)]


def _market_price(value: Decimal) -> Decimal:
    if value < Decimal("1e-12"):
        raise ValueError("a price under 1e-12 is not a market price")
    return value


Price = Annotated[
    Decimal,
    Field(gt=0, le=Decimal("1e12"), allow_inf_nan=False),
    AfterValidator(_market_price),
]
Leverage = Annotated[Decimal, Field(ge=1, le=200, allow_inf_nan=False)]
Venue = Literal["HYPERLIQUID", "OSTIUM"]
# dates a replay can mean (and date arithmetic cannot overflow)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_DEPTH = 64  # JSON nesting; a scenario needs 5


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _aware(value: datetime) -> datetime:
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("a date between 2000 and 2100 is expected") from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError("a date between 2000 and 2100 is expected")
    return moment


class Risk(_Model):
    stop_loss_pct: Annotated[Decimal, Field(gt=0, lt=1, allow_inf_nan=False)]
    take_profit_pct: Annotated[Decimal, Field(gt=0, le=100, allow_inf_nan=False)] | None = None
    trailing_activation_pct: Fraction | None = None
    trailing_distance_pct: Annotated[Decimal, Field(gt=0, lt=1, allow_inf_nan=False)] | None = None
    leverage: Leverage = Decimal(1)
    min_confidence: Fraction = Decimal("0.5")

    @model_validator(mode="after")
    def _trailing_pair(self) -> Risk:
        if (self.trailing_activation_pct is None) != (self.trailing_distance_pct is None):
            raise ValueError(
                "trailing_activation_pct and trailing_distance_pct go together: "
                "give both or neither"
            )
        return self


class AgentSpec(_Model):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    sources: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    venue: Literal["HYPERLIQUID", "OSTIUM", "MULTI"]
    venue_preference: list[Venue] | None = None
    risk: Risk
    creator: str | None = None  # a user name from `users`
    creator_share_pct: Fraction = Decimal("0.10")
    source_share_pct: Fraction = Decimal("0.10")


class DeploymentSpec(_Model):
    agent: str
    collateral_usd: Dollars
    leverage: Leverage
    manual_approval: bool = False
    # live: accounted as a live deployment (it pays profit share), still filled by the
    # replay's paper venue; paper: a paper deployment, which pays none
    mode: Literal["paper", "live"] = "paper"


class UserSpec(_Model):
    name: Annotated[str, Field(min_length=1)]
    deployments: list[DeploymentSpec] = []


class Fees(_Model):
    taker_bps: Annotated[Decimal, Field(ge=0, le=1000)] = Decimal("4.5")
    slippage_bps: Annotated[Decimal, Field(ge=0, le=1000)] = Decimal(5)


class MarketSpec(_Model):
    name: Annotated[str, Field(min_length=1)]
    size_decimals: Annotated[int, Field(ge=0, le=12)] | None = None
    max_leverage: Leverage | None = None
    min_notional: Annotated[Decimal, Field(ge=0, le=Decimal("1e9"), allow_inf_nan=False)] | None = (
        None
    )


class PostSpec(_Model):
    id: str
    source: str
    text: str
    posted_at: datetime

    _aware = field_validator("posted_at")(_aware)

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) else v


class PriceSpec(_Model):
    ts: datetime
    market: str
    price: Price

    _aware = field_validator("ts")(_aware)


class Scenario(_Model):
    agents: Annotated[list[AgentSpec], Field(min_length=1)]
    users: list[UserSpec] = []
    fees: Fees = Fees()
    markets: dict[Venue, list[str | MarketSpec]] | None = None
    posts: list[PostSpec] = []
    posts_file: str | None = None  # JSON lines, relative to the scenario file; adds to posts
    prices: list[PriceSpec] = []

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        agents = [a.name for a in self.agents]
        users = [u.name for u in self.users]
        for what, names in (("agents", agents), ("users", users)):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"{what}: duplicate name(s) {sorted(dup)}")
        for i, a in enumerate(self.agents):
            if a.creator is not None and a.creator not in users:
                raise ValueError(f"agents[{i}].creator: unknown user {a.creator!r}")
        for i, u in enumerate(self.users):
            for j, d in enumerate(u.deployments):
                if d.agent not in agents:
                    raise ValueError(
                        f"users[{i}].deployments[{j}].agent: unknown agent {d.agent!r}"
                    )
        post_ids = [(p.source, p.id) for p in self.posts]
        if len(set(post_ids)) != len(post_ids):
            raise ValueError("posts: the same (source, id) appears twice")
        return self


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "tagged-union", "list[", "str", "Decimal")):
            continue  # pydantic's internal union branch labels
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings, read without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number a scenario can use")


def parse_scenario(text: str, origin: str = "scenario", base_dir: Path | None = None) -> Scenario:
    if _depth(text) > MAX_DEPTH:
        raise ScenarioError(f"{origin}: JSON nested deeper than {MAX_DEPTH} levels")
    try:
        raw = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    except ValueError as exc:  # NaN, Infinity; an integer too long to read
        raise ScenarioError(f"{origin}: {exc}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{origin}: the top level must be a JSON object")
    if isinstance(raw.get("posts_file"), str):
        raw["posts"] = list(raw.get("posts") or []) + _read_posts(
            (base_dir or Path(".")) / raw["posts_file"], origin
        )
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            msg = err["msg"].removeprefix("Value error, ")
            loc = _field_path(err["loc"])
            lines.append(msg if loc == "(top level)" and ":" in msg else f"{loc}: {msg}")
        # a union reports each branch; one line per field is enough
        unique = list(dict.fromkeys(lines))
        raise ScenarioError(f"{origin}: invalid scenario\n  " + "\n  ".join(unique)) from None


def _read_posts(path: Path, origin: str) -> list[dict[str, object]]:
    try:
        posts = JsonlFileSource(path).read()
    except OSError as exc:
        raise ScenarioError(f"{origin}: posts_file {path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise ScenarioError(f"{origin}: posts_file {exc}") from None
    return [
        {
            "id": p.external_id,
            "source": p.source_handle,
            "text": p.text,
            "posted_at": p.posted_at.isoformat(),
        }
        for p in posts
    ]


MAX_BYTES = 50_000_000


def load_scenario(path: Path) -> Scenario:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise ScenarioError(f"{path}: larger than {MAX_BYTES // 1_000_000} MB")
    return parse_scenario(decode(data, str(path)), str(path), path.parent)


def decode(data: bytes, origin: str) -> str:
    """UTF-8 (with or without a BOM), or UTF-16 with its BOM; anything else is named."""
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"{origin}: not UTF-8 text (byte {exc.start}): save the file as UTF-8"
        ) from None
