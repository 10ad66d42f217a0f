"""Ostium's subgraph, as far as ostium-python-sdk asks it: the SDK's queries run through
graphql-core against a schema of the types they touch (an unknown field or argument fails as
it would at the real endpoint). Pairs come from the peer's configuration, open trades from the
chain; orders are never indexed here, so the SDK falls back to the chain's settlement events
(what it does when the real subgraph lags)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import build_schema, graphql_sync

SCHEMA = build_schema(
    """
    scalar BigInt
    scalar BigDecimal
    scalar Bytes

    enum OrderDirection { asc desc }
    enum Order_orderBy { executedAt initiatedAt }
    enum Limit_orderBy { initiatedAt }

    type Group {
      id: ID! name: String! minLeverage: BigInt! maxLeverage: BigInt!
      maxCollateralP: BigInt! longCollateral: BigInt! shortCollateral: BigInt!
    }
    type Fee { minLevPos: BigInt! }
    type Pair {
      id: ID! from: String! to: String! feed: Bytes! overnightMaxLeverage: BigInt!
      longOI: BigInt! shortOI: BigInt! maxOI: BigInt! makerFeeP: BigInt! takerFeeP: BigInt!
      makerMaxLeverage: BigInt! curFundingLong: BigInt! curFundingShort: BigInt!
      curRollover: BigInt! totalOpenTrades: BigInt! totalOpenLimitOrders: BigInt!
      accRollover: BigInt! lastRolloverBlock: BigInt! rolloverFeePerBlock: BigInt!
      accFundingLong: BigInt! accFundingShort: BigInt! lastFundingBlock: BigInt!
      maxFundingFeePerBlock: BigInt! lastFundingRate: BigInt! hillInflectionPoint: BigInt!
      hillPosScale: BigInt! hillNegScale: BigInt! springFactor: BigInt!
      sFactorUpScaleP: BigInt! sFactorDownScaleP: BigInt! lastTradePrice: BigInt!
      maxLeverage: BigInt! spreadP: BigInt! group: Group! fee: Fee!
    }
    type Trade {
      id: ID! tradeID: BigInt! trader: Bytes! pair: Pair! index: BigInt! tradeType: String
      collateral: BigInt! leverage: BigInt! highestLeverage: BigInt! openPrice: BigInt!
      closePrice: BigInt stopLossPrice: BigInt! takeProfitPrice: BigInt! isOpen: Boolean!
      closeInitiated: Boolean timestamp: BigInt! isBuy: Boolean! notional: BigInt!
      tradeNotional: BigInt! funding: BigInt! rollover: BigInt!
    }
    type Order {
      id: ID! trader: Bytes! pair: Pair! tradeID: BigInt limitID: BigInt orderType: String
      orderAction: String price: BigInt priceAfterImpact: BigInt priceImpactP: BigInt
      collateral: BigInt notional: BigInt tradeNotional: BigInt profitPercent: BigInt
      totalProfitPercent: BigInt amountSentToTrader: BigInt isBuy: Boolean initiatedAt: BigInt
      executedAt: BigInt initiatedTx: Bytes executedTx: Bytes initiatedBlock: BigInt
      executedBlock: BigInt leverage: BigInt isPending: Boolean isCancelled: Boolean
      cancelReason: String devFee: BigInt vaultFee: BigInt oracleFee: BigInt
      liquidationFee: BigInt fundingFee: BigInt rolloverFee: BigInt closePercent: BigInt
    }
    type Limit {
      id: ID! collateral: BigInt! leverage: BigInt! isBuy: Boolean! isActive: Boolean!
      openPrice: BigInt! takeProfitPrice: BigInt! stopLossPrice: BigInt! trader: Bytes!
      initiatedAt: BigInt! limitType: String! pair: Pair!
    }
    type MetaData { liqMarginThresholdP: BigInt! }

    input Trade_filter { id: ID isOpen: Boolean trader: Bytes }
    input Order_filter { id: ID trader: Bytes isPending: Boolean }
    input Limit_filter { trader: Bytes isActive: Boolean }

    type Query {
      pairs(first: Int): [Pair!]!
      pair(id: ID!): Pair
      metaDatas: [MetaData!]!
      trades(where: Trade_filter): [Trade!]!
      orders(
        where: Order_filter, first: Int, orderBy: Order_orderBy, orderDirection: OrderDirection
      ): [Order!]!
      limits(
        where: Limit_filter, orderBy: Limit_orderBy, orderDirection: OrderDirection
      ): [Limit!]!
    }
    """
)

Json = dict[str, Any]


def answer(
    body: Json,
    pairs: Callable[[], list[Json]],
    open_trades: Callable[[str | None], list[Json]],
) -> Json:
    """The JSON answer to one GraphQL request body (`query`, optional `variables`)."""

    def trades(_info: Any, where: Json | None = None) -> list[Json]:
        where = where or {}
        found = open_trades(where.get("trader"))
        if "id" in where:
            found = [t for t in found if t["id"] == where["id"]]
        return found

    def pair(_info: Any, id: str) -> Json | None:
        return next((p for p in pairs() if p["id"] == str(id)), None)

    root = {
        "pairs": lambda _info, first=1000: pairs()[:first],
        "pair": pair,
        "metaDatas": lambda _info: [{"liqMarginThresholdP": "25"}],
        "trades": trades,
        "orders": lambda _info, **_: [],
        "limits": lambda _info, **_: [],
    }
    result = graphql_sync(
        SCHEMA, body.get("query", ""), root_value=root, variable_values=body.get("variables")
    )
    out: Json = {"data": result.data}
    if result.errors:
        out["errors"] = [{"message": e.message} for e in result.errors]
    return out
