"""Delivery to outside systems: attempts with backoff, and a dead-letter file.

Shared by the outbound plugins (webhook, e-mail, write-back). One attempt
either returns or raises :class:`DeliveryError`. Transient failures
(connection errors, timeouts, HTTP 5xx and 429, SMTP 4xx) are tried again
after ``backoff``, ``2 * backoff``, ``4 * backoff``... seconds, or after the
server's ``Retry-After`` (capped at ``max_retry_after``); other failures are
final at once. A delivery that fails for good is appended to the
``dead_letter`` file (one JSON object a line) when one is configured, and the
error is raised so the caller knows.
"""

from __future__ import annotations

import functools
import json
import math
import os
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from slaengine.errors import SlaEngineError

T = TypeVar("T")

#: How much of an error answer's body an error message quotes.
EXCERPT = 300

# One lock for every dead-letter file: the plugin host calls plugins from a thread pool.
_dead_letter_lock = threading.Lock()


class DeliveryError(SlaEngineError):
    """A message or update could not be delivered.

    ``transient`` failures are worth another attempt; ``status`` is the HTTP
    or SMTP reply code when there was one; ``attempts`` is how many were made.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status = status
        self.retry_after = retry_after
        self.attempts = 1

    def __str__(self) -> str:
        return f"{self.message} (after {self.attempts} attempt(s))"


class DeliveryConfig(BaseModel):
    """The delivery settings every outbound plugin accepts.

    ``retries`` counts the attempts after the first one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: float = Field(5.0, gt=0)
    retries: int = Field(3, ge=0)
    backoff: float = Field(0.5, ge=0)
    max_retry_after: float = Field(30.0, ge=0)
    dead_letter: Path | None = None

    def deliver(self, attempt: Callable[[], T], record: Mapping[str, Any]) -> T:
        """Run ``attempt`` until it returns, retrying transient failures.

        When it fails for good, ``record`` (what was to be delivered, and
        where) is dead-lettered with the attempts and the last error, and
        the :class:`DeliveryError` is raised.
        """
        try:
            return self._attempts(attempt)
        except DeliveryError as exc:
            if self.dead_letter is not None:
                append_dead_letter(
                    self.dead_letter,
                    {
                        **record,
                        "attempts": exc.attempts,
                        "error": exc.message,
                        "at": datetime.now(UTC).isoformat(),
                    },
                )
            raise

    def _attempts(self, attempt: Callable[[], T]) -> T:
        number = 1
        while True:
            try:
                return attempt()
            except DeliveryError as exc:
                exc.attempts = number
                if not exc.transient or number > self.retries:
                    raise
                time.sleep(self._wait(number, exc.retry_after))
            number += 1

    def _wait(self, number: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self.backoff * 2 ** (number - 1)


def from_env(name: str) -> str:
    """The value of environment variable ``name`` (a secret); ValueError when unset or empty."""
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"environment variable {name} is not set")
    return value


def append_dead_letter(path: Path, record: Mapping[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``path`` (created with its directory)."""
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    with _dead_letter_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as file:
            file.write(line)


def http_client(timeout: float, auth: httpx.Auth | None = None) -> httpx.Client:
    """An httpx client for one delivery (close it after use)."""
    return httpx.Client(timeout=timeout, auth=auth, verify=_tls())


@functools.cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle takes about 90 ms; one context serves every client.
    return httpx.create_ssl_context()


def send_http(client: httpx.Client, request: httpx.Request) -> httpx.Response:
    """One HTTP attempt: a 2xx answer is returned, anything else raises DeliveryError.

    Connection errors, timeouts, 5xx and 429 are transient; other answers
    are final. The error names the request and quotes the answer's body.
    """
    where = f"{request.method} {request.url}"
    try:
        response = client.send(request)
    except httpx.TransportError as exc:
        raise DeliveryError(_join(where, type(exc).__name__, str(exc)), transient=True) from exc
    if response.is_success:
        return response
    status = response.status_code
    raise DeliveryError(
        _join(where, f"HTTP {status}", response.text[:EXCERPT].strip()),
        transient=status >= 500 or status == 429,
        status=status,
        retry_after=_retry_after(response),
    )


def _join(*parts: str) -> str:
    return ": ".join(part for part in parts if part)


def _retry_after(response: httpx.Response) -> float | None:
    # Only the delay-seconds form; an HTTP-date falls back to the backoff.
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None
