"""The reference for the end-to-end benchmark: what a user would write by hand instead.

A FastAPI endpoint that verifies the Standard Webhooks signature, maps the events
the three seed handlers map, in Python, and calls Segment's own Python SDK
(`segment-analytics-python`), which batches in memory and sends from a thread.
Run as: uvicorn handwritten_app:app (env: DODO_WEBHOOK_SECRET, SEGMENT_WRITE_KEY, SEGMENT_ENDPOINT).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import segment.analytics as analytics
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook

analytics.write_key = os.environ["SEGMENT_WRITE_KEY"]
analytics.host = os.environ["SEGMENT_ENDPOINT"]
hook = Webhook(os.environ["DODO_WEBHOOK_SECRET"])
app = FastAPI()


def when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


def payment_succeeded(event: dict[str, Any]) -> None:
    p = event["data"]
    customer = p["customer"]
    analytics.track(
        user_id=customer["customer_id"],
        event="Payment Completed",
        timestamp=when(event),
        properties={
            "amount": f"{p['total_amount'] / 100:.2f}",
            "currency": p.get("currency") or "USD",
            "payment_method": p.get("payment_method") or "unknown",
            "payment_id": p["payment_id"],
            "customer_email": customer["email"],
            "customer_name": customer["name"],
        },
    )
    analytics.identify(
        user_id=customer["customer_id"],
        traits={
            "email": customer["email"],
            "name": customer["name"],
            "total_spent": f"{p['total_amount'] / 100:.2f}",
            "payment_method": p.get("payment_method") or "unknown",
            "last_payment_date": event["timestamp"],
            "customer_since": event["timestamp"],
        },
    )


def subscription(event: dict[str, Any], name: str) -> None:
    s = event["data"]
    analytics.track(
        user_id=s["customer"]["customer_id"],
        event=name,
        timestamp=when(event),
        properties={
            "subscription_id": s["subscription_id"],
            "product_id": s["product_id"],
            "customer_email": s["customer"]["email"],
        },
    )


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/webhooks/dodo")
async def receive(request: Request) -> Response:
    body = await request.body()
    try:
        event = hook.verify(body, dict(request.headers))
    except Exception:
        return Response(status_code=401)
    kind = event.get("type")
    if kind == "payment.succeeded":
        payment_succeeded(event)
    elif kind == "subscription.active":
        subscription(event, "Subscription Started")
    elif kind == "subscription.cancelled":
        subscription(event, "Subscription Cancelled")
    return Response(status_code=200)
