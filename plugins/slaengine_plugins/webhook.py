"""Webhook notifier: escalation actions POSTed as signed JSON.

Configuration (``plugins.webhook``); without ``url`` the plugin does nothing::

    url: https://hooks.example.com/sla
    secret_env: SLA_WEBHOOK_SECRET   # or secret: <text>; one of them is required
    actions: [notify]                # the action types it sends
    timeout: 5                       # seconds per attempt
    retries: 3                       # attempts after the first
    backoff: 0.5                     # seconds before the first retry, doubling
    max_retry_after: 30              # cap on a 429/5xx answer's Retry-After
    dead_letter: /var/lib/slaengine/webhook.jsonl

The body is a JSON object: ``ticket_id``, ``metric``, ``cycle``,
``threshold``, ``instant``, ``plan``, ``ruleset``, ``priority``, ``due_at``,
``action`` (``{"type", "params"}``), ``idempotency_key`` and ``sent_at``
(instants in ISO 8601 with their offset). It is the same on every retry.

Signature scheme, for receivers. Each attempt carries::

    Idempotency-Key: INC-1001/resolution/1/75%/0     (same on every retry)
    X-Slaengine-Timestamp: 1795395600                 (unix seconds of this attempt)
    X-Slaengine-Signature: sha256=<hex>

where ``<hex>`` is the lowercase hex HMAC-SHA256, keyed with the secret
(UTF-8), of the timestamp, a dot, and the raw body bytes:
``f"{timestamp}.{body}"``. A receiver recomputes it over the exact bytes it
received and compares in constant time (:func:`verify_signature` does both
and refuses timestamps older than five minutes), then drops any
Idempotency-Key it has already acted on.

Retries, dead-lettering and errors follow :mod:`slaengine_plugins.delivery`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import field_validator

from slaengine.escalation import Action, EscalationContext
from slaengine.hookspecs import hookimpl
from slaengine_plugins.delivery import DeliveryConfig, from_env, http_client, send_http

#: The fields of the escalation context a webhook body carries.
CONTEXT_FIELDS = frozenset(
    {
        "ticket_id",
        "metric",
        "cycle",
        "threshold",
        "instant",
        "plan",
        "ruleset",
        "priority",
        "due_at",
    }
)


class WebhookConfig(DeliveryConfig):
    """The ``plugins.webhook`` settings."""

    url: str | None = None
    secret: str | None = None
    secret_env: str | None = None
    actions: tuple[str, ...] = ("notify",)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None and httpx.URL(url).scheme not in ("http", "https"):
            raise ValueError(f"url {url!r} is not an http(s) URL")
        return url


class WebhookNotifier:
    """Sends escalation actions to one URL, signed as the module docstring describes."""

    def __init__(self) -> None:
        self.config = WebhookConfig()
        self._secret = ""
        # One client for every delivery: its pool keeps connections alive (a new
        # client per delivery cost most of a delivery's time); thread-safe.
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = http_client(self.config.timeout)
            return self._client

    @hookimpl
    def slaengine_configure(self, config: Mapping[str, Any]) -> None:
        """Read the settings; a URL needs a secret (given, or named by ``secret_env``)."""
        settings = WebhookConfig.model_validate(config)
        if settings.secret is not None and settings.secret_env is not None:
            raise ValueError("give either secret or secret_env, not both")
        secret = settings.secret
        if settings.secret_env is not None:
            secret = from_env(settings.secret_env)
        if settings.url is not None and not secret:
            raise ValueError("a url needs a secret or secret_env to sign with")
        with self._client_lock:
            if self._client is not None:
                self._client.close()
            self.config, self._secret, self._client = settings, secret or "", None

    @hookimpl
    def slaengine_escalation_actions(self) -> tuple[str, ...]:
        """The configured action types; none without a URL."""
        return self.config.actions if self.config.url is not None else ()

    @hookimpl
    def slaengine_escalate(self, context: EscalationContext, action: Action) -> bool | None:
        """POST the action; True once delivered, None when unconfigured or not ours."""
        url = self.config.url
        if url is None or action.type not in self.config.actions:
            return None
        payload = {
            **context.model_dump(mode="json", include=CONTEXT_FIELDS),
            "action": action.model_dump(mode="json"),
            "idempotency_key": context.idempotency_key,
            "sent_at": datetime.now(UTC).isoformat(),
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

        def attempt() -> httpx.Response:
            timestamp = str(int(time.time()))
            request = client.build_request(
                "POST",
                url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": context.idempotency_key,
                    "X-Slaengine-Timestamp": timestamp,
                    "X-Slaengine-Signature": sign(self._secret, timestamp, body),
                },
            )
            return send_http(client, request)

        client = self._http()
        self.config.deliver(attempt, {"plugin": "webhook", "url": url, "body": payload})
        return True


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Slaengine-Signature`` value: ``sha256=`` and the hex HMAC of ``timestamp.body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes | str,
    header: str,
    *,
    max_age: float | None = 300.0,
) -> bool:
    """Whether ``header`` signs ``body`` at ``timestamp`` with ``secret``.

    ``body`` must be the raw bytes received (a str is encoded as UTF-8).
    A timestamp more than ``max_age`` seconds away from now is refused
    (replay protection); ``max_age=None`` skips that check.
    """
    try:
        seconds = int(timestamp)
    except ValueError:
        return False
    if max_age is not None and abs(time.time() - seconds) > max_age:
        return False
    raw = body.encode() if isinstance(body, str) else body
    return hmac.compare_digest(sign(secret, str(timestamp), raw).encode(), header.encode())
