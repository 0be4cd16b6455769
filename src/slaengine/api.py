"""The HTTP API (FastAPI): helpdesk systems that are not written in Python call this.

Every request but the health checks carries ``Authorization: Bearer TOKEN``;
the token's tenant scopes everything the request can see or change. Errors
are JSON: ``{"error": {"path": "...", "message": "..."}}``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import Receive, Scope, Send

from slaengine.clock import MetricStatus
from slaengine.database import ruleset_reloads
from slaengine.engine import Engine
from slaengine.errors import (
    EventError,
    RulesetErrors,
    SignatureError,
    SlaEngineError,
    TicketError,
    UnknownSourceError,
)
from slaengine.ingest import Ingestor
from slaengine.plugins import PluginHost
from slaengine.service import Announcer, SlaService, statuses_json
from slaengine.store import SqlStore
from slaengine.tenancy import tenant_of
from slaengine.ticket import TicketEvent, parse_event

log = logging.getLogger(__name__)

#: Request bodies larger than this are refused (413).
MAX_BODY_BYTES = 1_000_000
#: How long a token's tenant is remembered without asking the database. Tokens
#: are never changed in place, so this only delays the refusal of a token
#: deleted from the database by this many seconds.
TOKEN_CACHE_SECONDS = 10.0


class ApiError(Exception):
    """An error answered as JSON with a status code."""

    def __init__(self, status: int, message: str, path: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.path = status, message, path


@dataclass
class Tenant:
    """One tenant's rulesets, engine and service."""

    name: str
    rulesets: Path
    service: SlaService
    lock: threading.Lock = field(default_factory=threading.Lock)
    retired: list[Engine] = field(default_factory=list)


class Metrics:
    """Prometheus metrics of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter("slaengine_decisions", "Decisions made", registry=self.registry)
        self.events = Counter("slaengine_events", "Ticket events stored", registry=self.registry)
        self.escalations = Counter(
            "slaengine_escalations", "Escalation deliveries", ["outcome"], registry=self.registry
        )
        self.breaches = Counter("slaengine_breaches", "Breach notices", registry=self.registry)
        self.latency = Histogram(
            "slaengine_request_seconds",
            "Request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )


class SlaApp:
    """Holds tenants, the store and the plugin host behind the FastAPI app."""

    def __init__(
        self,
        store: SqlStore,
        tenants: Mapping[str, str | Path],
        host: PluginHost | None = None,
        announce_in_background: bool = False,
    ) -> None:
        """``announce_in_background``: requests don't wait for the decision and routing
        hooks (a write-back's HTTP call); they run after the commit on a thread of their
        own (:class:`~slaengine.service.Announcer`), as ``serve`` runs them."""
        self.store = store
        self.host = host or PluginHost(entry_points=False)
        self.metrics = Metrics()
        self.ingest = Ingestor()
        self.announcer = Announcer() if announce_in_background else None
        # SHA-256 of a token -> (tenant, remembered until); tokens themselves are not kept.
        self._tokens: dict[str, tuple[str, float]] = {}
        self.tenants: dict[str, Tenant] = {}
        for name, rulesets in tenants.items():
            engine = Engine.from_directory(rulesets)
            service = SlaService(
                engine,
                self.host,
                store.for_tenant(name),
                worker=f"api-{name}",
                announcer=self.announcer,
            )
            self.tenants[name] = Tenant(name, Path(rulesets), service)
        # Reloads up to now are in the rulesets just loaded: follow_reloads takes later ones.
        self._seen_reloads = self._latest_reloads()
        self.ready = True

    def tenant(self, name: str) -> Tenant:
        return self.tenants[name]

    def tenant_of_token(self, token: str) -> Tenant | None:
        """The tenant a bearer token belongs to (remembered for TOKEN_CACHE_SECONDS)."""
        now = time.monotonic()
        digest = hashlib.sha256(token.encode()).hexdigest()
        known = self._tokens.get(digest)
        if known is not None and known[1] > now:
            return self.tenants[known[0]]
        name = tenant_of(self.store.engine, token)
        if name is None or name not in self.tenants:
            return None
        if len(self._tokens) >= 10_000:
            self._tokens.clear()
        self._tokens[digest] = (name, now + TOKEN_CACHE_SECONDS)
        return self.tenants[name]

    def tenant_of_header(self, header: str) -> Tenant:
        """The tenant of an ``Authorization: Bearer TOKEN`` header (401 otherwise)."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "missing bearer token", "headers.authorization")
        tenant = self.tenant_of_token(token.strip())
        if tenant is None:
            raise ApiError(401, "unknown token", "headers.authorization")
        return tenant

    def reload(self, tenant: Tenant) -> dict[str, Any]:
        """Load the tenant's rulesets anew; a broken set is refused and the old stays.

        The reload is recorded (``ruleset_reloads``); the other processes
        serving the database take it up too (:meth:`follow_reloads`).
        """
        with tenant.lock:
            try:
                engine = Engine.from_directory(tenant.rulesets)
            except RulesetErrors as exc:
                self._audit(tenant.name, False, [], str(exc))
                raise ApiError(
                    422, f"rulesets refused, the working set stays in force:\n{exc}"
                ) from None
            self._put_in_force(tenant, engine)
            revisions = [f"{r.name}@{r.version}+{r.revision}" for r in engine.rulesets()]
            self._seen_reloads[tenant.name] = self._audit(tenant.name, True, revisions, None)
            return {"reloaded": revisions}

    @staticmethod
    def _put_in_force(tenant: Tenant, engine: Engine) -> None:
        old = tenant.service.engine
        tenant.service.engine = engine
        tenant.retired.append(old)  # requests in flight may still use it

    def _latest_reloads(self) -> dict[str, int]:
        """The id of each tenant's latest accepted reload, by tenant."""
        query = (
            sa.select(ruleset_reloads.c.tenant_id, sa.func.max(ruleset_reloads.c.id))
            .where(ruleset_reloads.c.ok)
            .group_by(ruleset_reloads.c.tenant_id)
        )
        with self.store.engine.connect() as conn:
            return {tenant: latest for tenant, latest in conn.execute(query) if tenant}

    def follow_reloads(self) -> list[str]:
        """Take up the reloads another process accepted since this one last looked.

        ``serve --workers N`` runs N processes, and a reload request reaches
        one of them; the others (and the scheduler's process, and any other
        ``serve`` on the database) load the tenant's rulesets from its
        directory as well when they see the recorded reload. A set that no
        longer loads (changed on disk since) is logged and the working set
        stays in force. Returns the tenants reloaded.
        """
        reloaded = []
        for name, latest in self._latest_reloads().items():
            tenant = self.tenants.get(name)
            if tenant is None or latest <= self._seen_reloads.get(name, 0):
                continue
            with tenant.lock:
                if latest <= self._seen_reloads.get(name, 0):
                    continue  # this process's own reload, recorded meanwhile
                self._seen_reloads[name] = latest
                try:
                    self._put_in_force(tenant, Engine.from_directory(tenant.rulesets))
                except RulesetErrors as exc:
                    log.error("tenant %s: reload %d not taken up: %s", name, latest, exc)
                    continue
            log.info("tenant %s: took up reload %d of another process", name, latest)
            reloaded.append(name)
        return reloaded

    def _audit(self, tenant: str, ok: bool, revisions: list[str], errors: str | None) -> int:
        """Record a reload; its id."""
        with self.store.engine.begin() as conn:
            return conn.execute(
                ruleset_reloads.insert().values(
                    at=datetime.now(UTC),
                    tenant_id=tenant,
                    ok=ok,
                    revisions=json.dumps(revisions),
                    errors=errors,
                )
            ).inserted_primary_key[0]

    def deliver_due(self, now: datetime | None = None) -> None:
        """One scheduler round over every tenant."""
        now = now or datetime.now(UTC)
        for tenant in self.tenants.values():
            report = tenant.service.deliver_due(now)
            escalated = [k for k in report.sent if k.startswith("escalate:")]
            self.metrics.escalations.labels("sent").inc(len(escalated))
            self.metrics.escalations.labels("failed").inc(len(report.failed) + len(report.dead))
            self.metrics.breaches.inc(len(report.sent) - len(escalated))

    def next_due(self) -> datetime | None:
        """When the earliest delivery that no worker holds comes due, in any tenant."""
        dues = [due for t in self.tenants.values() if (due := t.service.store.next_due())]
        return min(dues, default=None)

    def close(self) -> None:
        self.ingest.close()
        if self.announcer is not None:
            self.announcer.close()  # what is committed is announced before the plugins go
        for tenant in self.tenants.values():
            tenant.service.engine.close()
            for engine in tenant.retired:
                engine.close()
        self.host.close()


def _statuses(statuses: Mapping[str, MetricStatus]) -> dict[str, Any]:
    return {metric: status.model_dump(mode="json") for metric, status in statuses.items()}


def _parse_instant(text: str, path: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{text!r} is not an ISO 8601 instant", path) from None
    if value.tzinfo is None:
        raise ApiError(400, f"{text!r} has no timezone; add an offset such as +08:00", path)
    return value


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}", "body") from None


def _parse_events(ticket_id: str, body: Any) -> list[TicketEvent]:
    """The events of a ``POST /v1/tickets/{id}/events`` body: one event object or a list."""
    items = body if isinstance(body, list) else [body]
    parsed = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            item = {"ticket_id": ticket_id, **item}
        try:
            event = parse_event(item)
        except TicketError as exc:
            prefix = f"[{i}]." if isinstance(body, list) else ""
            raise ApiError(422, exc.message, prefix + exc.path) from None
        if event.ticket_id != ticket_id:
            raise ApiError(422, f"event is for ticket {event.ticket_id!r}", "ticket_id")
        parsed.append(event)
    return parsed


async def tenant_of_request(request: Request) -> Tenant:
    """The tenant whose bearer token the request carries (401 otherwise)."""
    sla: SlaApp = request.app.state.sla
    return sla.tenant_of_header(request.headers.get("authorization", ""))


#: Errors of a request, answered with their status; anything else is a fault of the service.
REQUEST_ERRORS = (ApiError, RequestValidationError, SlaEngineError)


def error_response(exc: ApiError | RequestValidationError | SlaEngineError) -> JSONResponse:
    """The JSON answer to an error a request ran into."""
    match exc:
        case ApiError():
            return _error(exc.status, exc.message, exc.path)
        case RequestValidationError():
            err = exc.errors()[0]
            return _error(422, err["msg"], ".".join(str(p) for p in err["loc"]))
        case SignatureError():
            return _error(401, exc.message, exc.path)
        case UnknownSourceError():
            return _error(404, exc.message, exc.path)
        case TicketError() | EventError():
            return _error(422, exc.message, exc.path)
        case _:  # NoRuleMatched and every other SlaEngineError
            return _error(422, str(exc), "")


class SlaApi(FastAPI):
    """The FastAPI app with the hot route served in front of FastAPI's own stack.

    ``POST /v1/tickets/{id}/events`` is what a helpdesk calls for every
    event; FastAPI's middleware, routing and request objects cost about
    0.25 ms of CPU a request (as much as uvicorn's own HTTP handling), so it
    is answered here as plain ASGI. Everything else goes through FastAPI.
    Every request is also checked for an oversize Content-Length and timed
    here.
    """

    sla: SlaApp
    events_latency: Any  # the latency histogram's child for the hot route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
                refusal = _error(413, f"request body over {MAX_BODY_BYTES} bytes", "body")
                await refusal(scope, receive, send)
                return
        started = time.perf_counter()
        match = _EVENTS_PATH.fullmatch(scope["path"])
        if match is not None:
            if scope["method"] == "POST":
                await self._post_events(match[1], scope, receive, send)
            else:
                refusal = _error(405, f"method {scope['method']} not allowed; use POST", "")
                refusal.headers["allow"] = "POST"
                await refusal(scope, receive, send)
            latency = self.events_latency
        else:
            await super().__call__(scope, receive, send)
            route = getattr(scope.get("route"), "path", "other")
            latency = self.sla.metrics.latency.labels(route)
        latency.observe(time.perf_counter() - started)

    async def _post_events(
        self, ticket_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Store a ticket's events (one object or a list); answer its metric statuses."""
        sla = self.sla
        try:
            authorization = next(
                (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), ""
            )
            tenant = sla.tenant_of_header(authorization)
            events = _parse_events(ticket_id, _parse_json(await _read_body(receive)))
            statuses = await sla.ingest.run(tenant.service, events)
        except REQUEST_ERRORS as exc:
            await error_response(exc)(scope, receive, send)
            return
        except Exception:
            log.exception("POST %s failed", scope["path"])
            await _error(500, "internal error; see the service log", "")(scope, receive, send)
            return
        sla.metrics.events.inc(len(events))
        metrics = statuses_json(statuses[ticket_id])
        body = f'{{"ticket_id":{json.dumps(ticket_id)},"metrics":{metrics}}}'.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    """A request's body, refused (413) as soon as it grows over MAX_BODY_BYTES."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "the client went away before its body was read", "body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes", "body")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


TenantOf = Annotated[Tenant, Depends(tenant_of_request)]
#: The hot route: served by :class:`SlaApi` itself, documented in the OpenAPI document.
EVENTS_ROUTE = "/v1/tickets/{ticket_id}/events"
_EVENTS_PATH = re.compile(r"/v1/tickets/([^/]+)/events")


def create_app(sla: SlaApp) -> FastAPI:
    """The FastAPI application over ``sla``."""
    app = SlaApi(title="slaengine", version="0.1.0", description=__doc__)
    app.sla = app.state.sla = sla
    app.events_latency = sla.metrics.latency.labels(EVENTS_ROUTE)

    async def answer(_request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)  # type: ignore[arg-type]  # registered for REQUEST_ERRORS

    for kind in REQUEST_ERRORS:
        app.add_exception_handler(kind, answer)

    async def json_body(request: Request) -> Any:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes", "body")
        return _parse_json(body)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> Response:
        try:
            with sla.store.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # the database is the dependency that can fail
            return _error(503, f"database unavailable: {exc}", "")
        return JSONResponse({"status": "ready", "tenants": sorted(sla.tenants)})

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(sla.metrics.registry), media_type="text/plain")

    @app.post("/v1/evaluate")
    async def evaluate(request: Request, t: TenantOf) -> Any:
        body = await json_body(request)
        engine = t.service.engine
        if isinstance(body, list):
            decisions = engine.evaluate_many(body)
            sla.metrics.decisions.inc(len(decisions))
            return [d.model_dump(mode="json") for d in decisions]
        decision = engine.evaluate(body)
        sla.metrics.decisions.inc()
        return decision.model_dump(mode="json")

    @app.get("/v1/tickets/{ticket_id}/sla")
    def ticket_sla(ticket_id: str, t: TenantOf, at: str | None = None) -> Any:
        instant = _parse_instant(at, "query.at") if at else datetime.now(UTC)
        record = t.service.store.ticket(ticket_id)
        if record is None:
            raise ApiError(404, f"unknown ticket {ticket_id!r}", "ticket_id")
        statuses = t.service.status(ticket_id, instant)
        return {
            "ticket_id": ticket_id,
            "at": instant.isoformat(),
            "decision": json.loads(record.decision),
            "metrics": _statuses(statuses),
        }

    @app.get("/v1/tickets")
    def work_queue(breaching_before: str, t: TenantOf, limit: int = 100) -> Any:
        instant = _parse_instant(breaching_before, "query.breaching_before")
        rows = t.service.store.breaching_before(instant, min(max(limit, 1), 1000))
        return [
            {
                "ticket_id": r.ticket_id,
                "next_due_at": r.next_due_at.isoformat(),
                "ruleset": r.ruleset,
                "priority": json.loads(r.decision).get("priority"),
            }
            for r in rows
        ]

    @app.post("/v1/intake/{source}")
    async def intake(source: str, request: Request, t: TenantOf) -> Any:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes", "body")
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        adapter = sla.host.pm.get_plugin(source)
        verify = getattr(adapter, "verify", None)
        if verify is not None:
            verify(headers, raw)
        payload = await json_body(request)
        events = t.service.intake(source, payload, headers).events
        statuses = await sla.ingest.run(t.service, events)
        return {tid: _statuses(s) for tid, s in statuses.items()}

    @app.get("/v1/rulesets")
    def rulesets(t: TenantOf) -> Any:
        return [info.model_dump(mode="json") for info in t.service.engine.rulesets()]

    @app.post("/v1/rulesets/reload")
    def reload(t: TenantOf) -> Any:
        return sla.reload(t)

    _document_events_route(app)
    return app


def _document_events_route(app: FastAPI) -> None:
    """Put the hot route, which FastAPI does not route, into the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            event = TicketEvent.model_json_schema(ref_template="#/components/schemas/{model}")
            event["properties"].pop("ticket_id")
            event["required"].remove("ticket_id")
            schema.setdefault("components", {}).setdefault("schemas", {})["Event"] = event
            ref = {"$ref": "#/components/schemas/Event"}
            error = {"description": "refused; the body names the field and why"}
            schema["paths"][EVENTS_ROUTE] = {
                "post": {
                    "summary": "Store a ticket's events",
                    "description": (
                        "One event, or a list applied atomically. Idempotent by event_id: a "
                        "retry changes nothing. Answers the ticket's metric statuses."
                    ),
                    "operationId": "post_events",
                    "parameters": [
                        {
                            "name": "ticket_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"anyOf": [ref, {"type": "array", "items": ref}]}
                            }
                        },
                    },
                    "responses": {
                        "200": {"description": "the ticket's metric statuses"},
                        **{code: error for code in ("400", "401", "413", "422")},
                    },
                }
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error(status: int, message: str, path: str) -> JSONResponse:
    return JSONResponse({"error": {"path": path, "message": message}}, status_code=status)
