"""The replay scenario file: its schema, and errors that name the field at fault.

Numbers are read as Decimal straight from the JSON text (never through float).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.ingest import JsonlFileSource

Fraction = Annotated[Decimal, Field(ge=0, le=1)]
Positive = Annotated[Decimal, Field(gt=0)]
Venue = Literal["HYPERLIQUID", "OSTIUM"]


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Risk(_Model):
    stop_loss_pct: Annotated[Decimal, Field(gt=0, lt=1)]
    take_profit_pct: Positive | None = None
    trailing_activation_pct: Fraction | None = None
    trailing_distance_pct: Annotated[Decimal, Field(gt=0, lt=1)] | None = None
    leverage: Positive = Decimal(1)
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
    collateral_usd: Positive
    leverage: Positive
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
    max_leverage: Positive | None = None
    min_notional: Annotated[Decimal, Field(ge=0)] | None = None


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
    price: Positive

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


def parse_scenario(text: str, origin: str = "scenario", base_dir: Path | None = None) -> Scenario:
    try:
        raw = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
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


def load_scenario(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_scenario(text, str(path), path.parent)
