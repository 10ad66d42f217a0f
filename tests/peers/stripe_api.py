"""A local Stripe the unmodified `stripe` client talks to over 127.0.0.1.

Speaks Stripe's wire format: form-encoded bodies with bracketed keys (`line_items[0][price]`,
`metadata[user]`), `Authorization: Bearer sk_test_...`, JSON answers with `object` fields,
errors as `{"error": {type, code, message, param}}`. Stateful for what Maxxit uses:
customers, products, prices, Checkout Sessions (mode=subscription), subscriptions (retrieve,
update with cancel_at_period_end, cancel), invoices, billing-portal sessions.

It also plays the customer and the card network (test methods, not HTTP): a Checkout paid,
a renewal paid or failed, a cancellation; each makes the events Stripe would make, and
`deliver` posts them to a webhook signed as Stripe signs (`Stripe-Signature: t=..,v1=..`,
HMAC-SHA256 of "t.body"), in any order, duplicated, stale or forged on request.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.peers.telegram_api import serve_app

Json = dict[str, Any]
MONTH = 30 * 24 * 3600


def parse_form(pairs: list[tuple[str, str]]) -> Json:
    """Stripe's bracket encoding back into nested dicts and lists."""
    out: Json = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = None if last else parts[i + 1]
            if isinstance(node, list):
                idx = int(part)
                while len(node) <= idx:
                    node.append({} if not nxt or not nxt.isdigit() else [])
                if last:
                    node[idx] = value
                else:
                    node = node[idx]
                continue
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if nxt is not None and nxt.isdigit() else {})
    return out


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _json(body: Json, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _error(message: str, status: int = 400, code: str = "resource_missing", param: str = ""):
    err = {"type": "invalid_request_error", "code": code, "message": message, "param": param}
    return _json({"error": err}, status)


class StripePeer:
    def __init__(self, api_key: str = "sk_test_maxxit", webhook_secret: str = "whsec_test") -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.objects: dict[str, Json] = {}  # id -> object, every kind
        self.events: list[Json] = []
        self.outbox: list[Json] = []  # events made by API calls, for a test to deliver
        self.requests: list[tuple[str, str, Json]] = []
        self.clock = int(time.time())
        self._ids = itertools.count(1)
        self.url = ""
        self.webhook_url = ""

    def _id(self, prefix: str) -> str:
        return f"{prefix}_test{next(self._ids):06d}"

    def _tick(self) -> int:
        self.clock += 1  # every change happens strictly after the one before
        return self.clock

    # -- HTTP API -----------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/customers", self._create("cus", self._customer), methods=["POST"]),
                Route("/v1/products", self._create("prod", self._product), methods=["POST"]),
                Route("/v1/prices", self._create("price", self._price), methods=["POST"]),
                Route(
                    "/v1/checkout/sessions",
                    self._create("cs", self._checkout),
                    methods=["POST"],
                ),
                Route("/v1/{kind}/{id}", self._retrieve, methods=["GET"]),
                Route("/v1/checkout/sessions/{id}", self._retrieve, methods=["GET"]),
                Route("/v1/subscriptions/{id}", self._cancel, methods=["DELETE"]),
                Route("/v1/subscriptions/{id}", self._update_subscription, methods=["POST"]),
                Route(
                    "/v1/billing_portal/sessions",
                    self._create("bps", self._portal),
                    methods=["POST"],
                ),
            ]
        )

    async def _params(self, request: Request) -> Json | Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            err = {"type": "invalid_request_error", "message": "Invalid API Key provided"}
            return _json({"error": err}, 401)
        if request.method == "POST" and not request.headers.get("idempotency-key"):
            # the real client sends one with every POST; Stripe dedupes retries by it
            return _error("Idempotency-Key missing", code="parameter_missing")
        body = (await request.body()).decode()
        params = parse_form(httpx.QueryParams(body).multi_items())
        self.requests.append((request.method, request.url.path, params))
        return params

    def _create(self, prefix: str, build: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            params = await self._params(request)
            if isinstance(params, Response):
                return params
            made = build(self._id(prefix), params)
            if isinstance(made, Response):
                return made
            self.objects[made["id"]] = made
            return _json(made)

        return endpoint

    async def _retrieve(self, request: Request) -> Response:
        params = await self._params(request)
        if isinstance(params, Response):
            return params
        found = self.objects.get(request.path_params["id"])
        if found is None:
            return _error(f"No such object: '{request.path_params['id']}'", 404, param="id")
        return _json(found)

    async def _cancel(self, request: Request) -> Response:
        params = await self._params(request)
        if isinstance(params, Response):
            return params
        sub = self.objects.get(request.path_params["id"])
        if sub is None:
            return _error("No such subscription", 404, param="id")
        self.cancel(sub["id"])
        return _json(sub)

    async def _update_subscription(self, request: Request) -> Response:
        """POST /v1/subscriptions/{id}: what Subscription.modify sends. Only what Maxxit
        changes is modelled: cancel_at_period_end (true: it ends when the period does; false:
        it renews again), and metadata. Stripe then sends customer.subscription.updated with
        the fields' previous values (kept in `outbox` until a test delivers them)."""
        params = await self._params(request)
        if isinstance(params, Response):
            return params
        sub = self.objects.get(request.path_params["id"])
        if sub is None or sub.get("object") != "subscription":
            return _error(f"No such subscription: '{request.path_params['id']}'", 404, param="id")
        unknown = set(params) - {"cancel_at_period_end", "metadata"}
        if unknown:
            name = sorted(unknown)[0]
            return _error(f"Received unknown parameter: {name}", code="parameter_unknown",
                          param=name)  # fmt: skip
        if sub["status"] == "canceled":
            return _error("A canceled subscription can only update its metadata.",
                          code="resource_missing", param="cancel_at_period_end")  # fmt: skip
        previous: Json = {}
        if "cancel_at_period_end" in params:
            flag = params["cancel_at_period_end"]
            if flag not in ("true", "false"):
                return _error("Invalid boolean", code="parameter_invalid_boolean",
                              param="cancel_at_period_end")  # fmt: skip
            wanted = flag == "true"
            if wanted != sub["cancel_at_period_end"]:
                end = sub["items"]["data"][0]["current_period_end"]
                previous = {"cancel_at_period_end": sub["cancel_at_period_end"],
                            "cancel_at": sub.get("cancel_at")}  # fmt: skip
                sub.update(cancel_at_period_end=wanted, cancel_at=end if wanted else None,
                           canceled_at=self._tick() if wanted else None)  # fmt: skip
        if "metadata" in params:
            previous["metadata"] = dict(sub["metadata"])
            sub["metadata"] = {**sub["metadata"], **params["metadata"]}
        if previous:
            self.outbox.append(self._event("customer.subscription.updated", sub, previous))
        return _json(sub)

    def _portal(self, pid: str, p: Json) -> Json | Response:
        customer = p.get("customer")
        if customer not in self.objects:
            return _error(f"No such customer: '{customer}'", param="customer")
        return {"id": pid, "object": "billing_portal.session", "configuration": "bpc_test",
                "created": self._tick(), "customer": customer, "flow": None, "livemode": False,
                "locale": p.get("locale"), "on_behalf_of": None,
                "return_url": p.get("return_url"),
                "url": f"{self.url}/p/session/{pid}"}  # fmt: skip

    def _customer(self, cid: str, p: Json) -> Json:
        return {"id": cid, "object": "customer", "created": self._tick(), "livemode": False,
                "email": p.get("email"), "metadata": p.get("metadata", {})}  # fmt: skip

    def _product(self, pid: str, p: Json) -> Json | Response:
        if not p.get("name"):
            return _error("Missing required param: name.", code="parameter_missing", param="name")
        return {"id": pid, "object": "product", "name": p["name"], "active": True,
                "metadata": p.get("metadata", {}), "created": self._tick()}  # fmt: skip

    def _price(self, pid: str, p: Json) -> Json | Response:
        if p.get("product") not in self.objects:
            return _error("No such product", param="product")
        if "recurring" not in p or not str(p.get("unit_amount", "")).isdigit():
            return _error("unit_amount and recurring required", code="parameter_missing")
        return {"id": pid, "object": "price", "product": p["product"], "active": True,
                "currency": p.get("currency", "usd"), "unit_amount": int(p["unit_amount"]),
                "recurring": {"interval": p["recurring"]["interval"], "interval_count": 1},
                "type": "recurring", "metadata": p.get("metadata", {}),
                "created": self._tick()}  # fmt: skip

    def _checkout(self, cid: str, p: Json) -> Json | Response:
        if p.get("mode") != "subscription":
            return _error("only mode=subscription here", param="mode")
        items = p.get("line_items") or []
        if not items or items[0].get("price") not in self.objects:
            return _error("No such price", param="line_items[0][price]")
        if not p.get("success_url"):
            return _error("Missing success_url", code="parameter_missing", param="success_url")
        return {
            "id": cid, "object": "checkout.session", "mode": "subscription",
            "status": "open", "payment_status": "unpaid", "customer": p.get("customer"),
            "client_reference_id": p.get("client_reference_id"),
            "metadata": p.get("metadata", {}), "subscription": None,
            "url": f"{self.url}/pay/{cid}", "success_url": p["success_url"],
            "line_items_price": items[0]["price"],
            "subscription_data": p.get("subscription_data", {}), "created": self._tick(),
        }  # fmt: skip

    # -- what customers and banks do ------------------------------------------------------

    def _event(self, kind: str, obj: Json, previous: Json | None = None) -> Json:
        data: Json = {"object": json.loads(json.dumps(obj))}
        if previous is not None:
            data["previous_attributes"] = previous
        event = {"id": self._id("evt"), "object": "event", "type": kind,
                 "api_version": "2026-10-28.endive", "created": self._tick(),
                 "livemode": False, "pending_webhooks": 1, "data": data}  # fmt: skip
        self.events.append(event)
        return event

    def _invoice(self, sub: Json, paid: bool) -> Json:
        price = self.objects[sub["items"]["data"][0]["price"]["id"]]
        inv = {
            "id": self._id("in"), "object": "invoice", "customer": sub["customer"],
            "status": "paid" if paid else "open", "amount_paid": price["unit_amount"] if paid
            else 0, "amount_due": price["unit_amount"], "currency": price["currency"],
            "created": self.clock,
            "parent": {"type": "subscription_details", "subscription_details": {
                "subscription": sub["id"], "metadata": sub["metadata"]}},
        }  # fmt: skip
        self.objects[inv["id"]] = inv
        return inv

    def complete_checkout(self, session_id: str) -> list[Json]:
        """The customer pays: the subscription starts; Stripe's events for it, in order."""
        cs = self.objects[session_id]
        price = self.objects[cs["line_items_price"]]
        now = self._tick()
        customer = cs["customer"] or self._customer(self._id("cus"), {})["id"]
        sub_id = self._id("sub")
        item = {"id": self._id("si"), "object": "subscription_item", "price": price,
                "current_period_start": now, "current_period_end": now + MONTH}  # fmt: skip
        sub = {"id": sub_id, "object": "subscription", "status": "active", "customer": customer,
               "metadata": cs["subscription_data"].get("metadata", {}),
               "items": {"object": "list", "data": [item]}, "cancel_at_period_end": False,
               "created": now, "canceled_at": None, "cancel_at": None,
               "ended_at": None}  # fmt: skip
        self.objects[sub_id] = sub
        cs.update(status="complete", payment_status="paid", subscription=sub_id,
                  customer=customer)  # fmt: skip
        invoice = self._invoice(sub, paid=True)
        return [
            self._event("checkout.session.completed", cs),
            self._event("customer.subscription.created", sub),
            self._event("invoice.paid", invoice),
        ]

    def renew(self, sub_id: str) -> list[Json]:
        sub = self.objects[sub_id]
        sub["status"] = "active"
        item = sub["items"]["data"][0]
        item["current_period_end"] = self._tick() + MONTH
        invoice = self._invoice(sub, paid=True)
        return [self._event("invoice.paid", invoice),
                self._event("customer.subscription.updated", sub)]  # fmt: skip

    def fail_renewal(self, sub_id: str) -> list[Json]:
        sub = self.objects[sub_id]
        self._tick()
        invoice = self._invoice(sub, paid=False)
        sub["status"] = "past_due"
        return [self._event("invoice.payment_failed", invoice),
                self._event("customer.subscription.updated", sub)]  # fmt: skip

    def end_period(self, sub_id: str) -> list[Json]:
        """The period ends: a subscription set to cancel at period end is canceled (its
        customer.subscription.deleted); any other renews."""
        sub = self.objects[sub_id]
        if not sub["cancel_at_period_end"]:
            return self.renew(sub_id)
        now = self._tick()
        sub.update(status="canceled", ended_at=now)
        return [self._event("customer.subscription.deleted", sub)]

    def take_outbox(self) -> list[Json]:
        """Events our API calls made Stripe send (not yet delivered)."""
        out, self.outbox = self.outbox, []
        return out

    def cancel(self, sub_id: str) -> list[Json]:
        sub = self.objects[sub_id]
        sub.update(status="canceled", canceled_at=self._tick())
        return [self._event("customer.subscription.deleted", sub)]

    async def deliver(
        self,
        events: list[Json],
        *,
        secret: str | None = None,
        age_seconds: int = 0,
        signature: str | None = None,
    ) -> list[int]:
        """POST each event to the webhook as Stripe does; their HTTP statuses."""
        statuses = []
        async with httpx.AsyncClient(timeout=10) as http:
            for event in events:
                body = json.dumps(event).encode()
                header = signature
                if header is None:
                    stamp = int(time.time()) - age_seconds
                    header = sign(body, secret or self.webhook_secret, stamp)
                r = await http.post(
                    self.webhook_url,
                    content=body,
                    headers={"Stripe-Signature": header, "Content-Type": "application/json"},
                )
                statuses.append(r.status_code)
        return statuses


@asynccontextmanager
async def stripe_peer(webhook_url: str = "", **kwargs: Any) -> AsyncIterator[StripePeer]:
    peer = StripePeer(**kwargs)
    async with serve_app(peer.app()) as root:
        peer.url = root
        peer.webhook_url = webhook_url
        yield peer
