"""Tenants and their API tokens: who may call the service, and whose data they see.

A token is shown once when created and stored only as its SHA-256 hash.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine as SqlEngine

from slaengine.database import api_tokens, tenants


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_tenant(engine: SqlEngine, tenant: str, name: str | None = None) -> None:
    """Create a tenant unless it exists."""
    with engine.begin() as conn:
        exists = conn.execute(sa.select(tenants.c.id).where(tenants.c.id == tenant)).first()
        if exists is None:
            conn.execute(
                tenants.insert().values(
                    id=tenant, name=name or tenant, created_at=datetime.now(UTC)
                )
            )


def create_token(engine: SqlEngine, tenant: str, name: str) -> str:
    """A new API token for ``tenant`` (creating the tenant if needed); returned once."""
    create_tenant(engine, tenant)
    token = "sla_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            api_tokens.insert().values(
                token_hash=_hash(token), tenant_id=tenant, name=name, created_at=datetime.now(UTC)
            )
        )
    return token


def tenant_of(engine: SqlEngine, token: str) -> str | None:
    """The tenant a token belongs to, or None for an unknown token."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(api_tokens.c.tenant_id).where(api_tokens.c.token_hash == _hash(token))
        ).first()
    return None if row is None else row.tenant_id


def has_tokens(engine: SqlEngine) -> bool:
    """Whether any token exists."""
    with engine.connect() as conn:
        return conn.execute(sa.select(api_tokens.c.token_hash).limit(1)).first() is not None
