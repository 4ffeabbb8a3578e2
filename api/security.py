"""CORS and rate limits of the API (settings in :class:`api.settings.ApiSettings`).

CORS
    Off unless ``BONDWATCH_API_CORS_ORIGINS`` lists origins (``https://hmi.zone.example``, comma
    separated): without it the API sends no CORS headers, so a browser lets only same-origin pages
    read its answers. Listed origins may call every method with ``Authorization`` and
    ``Content-Type``; no cookies are involved (bearer tokens), so credentials stay off and ``*`` is
    refused as an origin.

Rate limits
    Token buckets, one per bearer token (keyed by a hash of it, the token itself is never kept) and one
    per client address, each refilled at ``rate`` per second up to ``burst``. A request needs a
    token from both buckets; otherwise it gets ``429 Too Many Requests`` with ``Retry-After`` (whole
    seconds) and is counted in ``bondwatch_api_rate_limited_total{scope}``. Garbage tokens do not
    escape the limit: they are limited per address like everything else. Only ``/api/`` is limited
    (``/metrics`` is for the scraper). The client address is uvicorn's: behind a reverse proxy set
    ``FORWARDED_ALLOW_IPS`` to the proxy's address so it is the real client's (uvicorn trusts
    ``X-Forwarded-For`` from 127.0.0.1 by default). Buckets live in the process: with N API
    processes a client gets up to N times the rate. A rate of 0 turns that limit off;
    ``BONDWATCH_API_RATE_LIMIT=false`` turns both off.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from fastapi import FastAPI
from prometheus_client import Counter
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.settings import ApiSettings

RATE_LIMITED = Counter("bondwatch_api_rate_limited_total", "API requests refused with 429", ["scope"])

# Buckets kept per limiter; the least recently used goes first (a full bucket loses nothing by it).
MAX_KEYS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """Token buckets by key: ``rate`` tokens a second, at most ``burst``."""

    def __init__(self, rate: float, burst: int, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        return bucket

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` has a token (0: it has one now); refills but takes nothing."""
        bucket = self._bucket(key, now)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def take(self, key: str) -> None:
        self._buckets[key].tokens -= 1


def _bearer_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            token = token.strip()
            if scheme.lower() == b"bearer" and token:
                return hashlib.sha256(token).hexdigest()[:32]
    return None


class RateLimitMiddleware:
    """Pure ASGI (streams such as /alerts/stream pass through untouched)."""

    def __init__(self, app: ASGIApp, settings: ApiSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.clock = clock
        self.per_token = (
            TokenBuckets(settings.api_rate_per_token, settings.api_burst_per_token)
            if settings.api_rate_per_token > 0
            else None
        )
        self.per_ip = (
            TokenBuckets(settings.api_rate_per_ip, settings.api_burst_per_ip) if settings.api_rate_per_ip > 0 else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        now = self.clock()
        checks: list[tuple[str, TokenBuckets, str]] = []
        if self.per_ip is not None:
            client = scope.get("client")
            checks.append(("ip", self.per_ip, client[0] if client else "unknown"))
        token_key = _bearer_key(scope)
        if self.per_token is not None and token_key is not None:
            checks.append(("token", self.per_token, token_key))
        waits = [(buckets.wait(key, now), name) for name, buckets, key in checks]
        wait, which = max(waits, default=(0.0, ""))
        if wait > 0:
            RATE_LIMITED.labels(which).inc()
            await _too_many(send, which, wait)
            return
        for _, buckets, key in checks:
            buckets.take(key)
        await self.app(scope, receive, send)


async def _too_many(send: Send, which: str, wait: float) -> None:
    retry = max(1, math.ceil(wait))
    body = orjson.dumps({"detail": f"too many requests for this {which}; retry after {retry} s"})
    start: Message = {
        "type": "http.response.start",
        "status": 429,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry).encode()),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


def install_security(app: FastAPI, settings: ApiSettings) -> None:
    """Rate limits, then CORS outermost (so that a browser can read a 429 too)."""
    if settings.api_rate_limit and (settings.api_rate_per_token > 0 or settings.api_rate_per_ip > 0):
        app.add_middleware(RateLimitMiddleware, settings=settings)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["Retry-After"],
            allow_credentials=False,
            max_age=600,
        )
