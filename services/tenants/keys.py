"""API keys: issued to a tenant, shown once, stored as a hash, checked per request, revoked.

A key reads `tq_<id>_<secret>`: the prefix makes a leaked key recognisable (secret
scanners, logs); `id` (48 random bits, public) names the key in lists and finds its row;
`secret` is 256 random bits. The row keeps only the SHA-256 of the whole key. A slow
password hash (bcrypt, argon2) exists to make guessing a low-entropy password expensive;
no guess finds 256 random bits, so one fast hash protects a key as well and costs a
request microseconds. The stored hash is compared with `hmac.compare_digest`, whose time
does not depend on where the two first differ.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import BindParameter, Connection, bindparam, or_, select, update
from sqlalchemy.orm import Session

from trainq.services.db.models import ApiKey, Tenant, UTCDateTime, utcnow
from trainq.services.db.session import core
from trainq.services.errors import KeyNotFound, NotAuthenticated
from trainq.services.tenants.principal import Principal, tenant_name

PREFIX = "tq"
ID_BYTES = 6
SECRET_BYTES = 32
# last_used_at is written at most this often per key: a request that only reads stays a read
LAST_USED_RESOLUTION = timedelta(minutes=1)


def issue(session: Session, tenant: str, *, admin: bool = False) -> tuple[ApiKey, str]:
    """A new key for `tenant` (made if new): its row, and the key itself, which is not stored."""
    key = new_key()
    return store(session, tenant, key, admin=admin), key


def new_key() -> str:
    return f"{PREFIX}_{secrets.token_hex(ID_BYTES)}_{secrets.token_urlsafe(SECRET_BYTES)}"


def store(session: Session, tenant: str, key: str, *, admin: bool = False) -> ApiKey:
    """Record `key` (from `new_key`) as `tenant`'s (made if new): its hash, never the key."""
    ensure_tenant(session, tenant)
    key_id = _parts(key)[0]
    row = ApiKey(id=key_id, tenant=tenant, key_hash=_hash(key), admin=admin, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def ensure_tenant(session: Session, name: str) -> Tenant:
    tenant = session.get(Tenant, tenant_name(name))
    if tenant is None:
        tenant = Tenant(name=name, created_at=utcnow())
        session.add(tenant)
        session.flush()
    return tenant


# Built once: every request authenticates, and constructing these statements anew (and
# loading an ORM object for a row read once) cost more CPU than running them.
_KEY = select(ApiKey.id, ApiKey.tenant, ApiKey.key_hash, ApiKey.admin, ApiKey.revoked_at, ApiKey.last_used_at).where(
    ApiKey.id == bindparam("key_id")
)
_USED_BEFORE: BindParameter[datetime] = bindparam("used_before", type_=UTCDateTime())
_NOTE_USE = (
    update(ApiKey)
    .where(
        ApiKey.id == bindparam("key_id"),
        # still conditional: of the requests racing past a stale value, one writes
        or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < _USED_BEFORE),
    )
    .values(last_used_at=bindparam("now", type_=UTCDateTime()))
)


def authenticate(connection: Connection, key: str) -> Principal:
    """Whom `key` belongs to; NotAuthenticated when it is malformed, unknown or revoked.

    Two statements at most, each whole on its own: the API runs them on an autocommit
    connection (`services.db.session.autocommit`)."""
    key_id, _ = _parts(key)
    row = connection.execute(_KEY, {"key_id": key_id}).one_or_none()
    # compared even when there is no row, so that an unknown id takes as long as a wrong secret
    stored = row.key_hash if row is not None else _hash("")
    if not hmac.compare_digest(stored, _hash(key)) or row is None:
        raise NotAuthenticated("the API key is not valid")
    if row.revoked_at is not None:
        raise NotAuthenticated("the API key was revoked")
    now = utcnow()
    # the row just read says whether a write is due: a request in the same minute sends none
    used_before = now - LAST_USED_RESOLUTION
    if row.last_used_at is None or row.last_used_at < used_before:
        connection.execute(_NOTE_USE, {"key_id": key_id, "used_before": used_before, "now": now})
    return Principal(tenant=row.tenant, admin=row.admin, key_id=row.id)


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.execute(select(ApiKey).order_by(ApiKey.tenant, ApiKey.created_at)).scalars())


def revoke(session: Session, key_id: str) -> ApiKey:
    """Refuse the key from now on; revoking a revoked key changes nothing."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise KeyNotFound(key_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def valid(session: Session, key: str) -> bool:
    try:
        authenticate(core(session), key)
    except NotAuthenticated:
        return False
    return True


def _parts(key: str) -> tuple[str, str]:
    """(id, secret) of a key of the form tq_<id>_<secret>."""
    prefix, _, rest = key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret or len(key_id) > 2 * ID_BYTES:
        raise NotAuthenticated("the API key is not valid")
    return key_id, secret


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
