"""`trainq keys` and `trainq tenants`: API keys made, listed and revoked, and tenants'
quotas set, on the database directly, like `trainq db upgrade` (no API key is needed to
make the first one); and the admin key `trainq up` makes on its first start and saves in
TRAINQ_HOME."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from trainq.services.settings import Settings

app = typer.Typer(no_args_is_help=True, help="API keys: create (shown once), list, revoke. On the database directly.")
tenants_app = typer.Typer(no_args_is_help=True, help="Tenants and their quotas. On the database directly.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


@app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for (made if new)")],
    admin: Annotated[bool, typer.Option("--admin", help="The key sees and acts on every tenant's work")] = False,
) -> None:
    """Make a key and print it, this once: only its hash is stored."""
    # imported here, not at the top: `trainq --help` loads no database code
    from trainq.services.db.session import session_factory, session_scope
    from trainq.services.errors import TrainqError
    from trainq.services.settings import get_settings
    from trainq.services.tenants import keys

    try:
        with session_scope(session_factory(get_settings())) as session:
            row, key = keys.issue(session, tenant, admin=admin)
    except TrainqError as error:
        err.print(f"trainq: {error.message}", markup=False)
        raise typer.Exit(2) from None
    err.print(f"API key {row.id} for tenant {row.tenant}{' (admin)' if admin else ''}; it is not shown again:")
    out.print(key, markup=False)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key")] = False) -> None:
    """The keys: id, tenant, admin, created, last used, revoked (never the key)."""
    # imported here, not at the top: `trainq --help` loads no database code
    from trainq.services.db.session import session_factory, session_scope
    from trainq.services.settings import get_settings
    from trainq.services.tenants import keys

    with session_scope(session_factory(get_settings())) as session:
        rows = keys.list_keys(session)
    if as_json:
        for row in rows:
            document = {
                "id": row.id,
                "tenant": row.tenant,
                "admin": row.admin,
                "createdAt": row.created_at.isoformat(),
                "lastUsedAt": _iso(row.last_used_at),
                "revokedAt": _iso(row.revoked_at),
            }
            out.print(json.dumps(document), markup=False)
        return
    table = Table("ID", "TENANT", "ADMIN", "CREATED", "LAST USED", "REVOKED")
    for row in rows:
        table.add_row(
            row.id, row.tenant, "yes" if row.admin else "", _shown(row.created_at), _shown(row.last_used_at),
            _shown(row.revoked_at),
        )  # fmt: skip
    out.print(table)


@app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id, as `trainq keys list` shows it")]) -> None:
    """Refuse the key from now on (its next request is answered 401)."""
    # imported here, not at the top: `trainq --help` loads no database code
    from trainq.services.db.session import session_factory, session_scope
    from trainq.services.errors import TrainqError
    from trainq.services.settings import get_settings
    from trainq.services.tenants import keys

    try:
        with session_scope(session_factory(get_settings())) as session:
            row = keys.revoke(session, key_id)
    except TrainqError as error:
        err.print(f"trainq: {error.message}", markup=False)
        raise typer.Exit(1) from None
    err.print(f"API key {row.id} of tenant {row.tenant} revoked")


@tenants_app.command("list")
def tenants_list() -> None:
    """The tenants and their quotas (empty: no limit)."""
    # imported here, not at the top: `trainq --help` loads no database code
    from trainq.services.db.session import session_factory, session_scope
    from trainq.services.settings import get_settings
    from trainq.services.tenants import quotas

    with session_scope(session_factory(get_settings())) as session:
        rows = quotas.list_tenants(session)
    table = Table("TENANT", "MAX ACTIVE JOBS", "MAX DATASET BYTES", "CREATED")
    for row in rows:
        table.add_row(row.name, _limit(row.max_active_jobs), _limit(row.max_dataset_bytes), _shown(row.created_at))
    out.print(table)


@tenants_app.command("set")
def tenants_set(
    tenant: Annotated[str, typer.Argument(help="An existing tenant (one with a key)")],
    max_active_jobs: Annotated[
        int | None, typer.Option(min=0, help="Queued + running jobs at once; omitted: no limit")
    ] = None,
    max_dataset_bytes: Annotated[
        int | None, typer.Option(min=0, help="Bytes of stored datasets, as uploaded; omitted: no limit")
    ] = None,
) -> None:
    """Set a tenant's quotas; past one, a submit or an upload is answered 429 with Retry-After."""
    # imported here, not at the top: `trainq --help` loads no database code
    from trainq.services.db.session import session_factory, session_scope
    from trainq.services.errors import TrainqError
    from trainq.services.settings import get_settings
    from trainq.services.tenants import quotas

    try:
        with session_scope(session_factory(get_settings())) as session:
            quotas.set_limits(session, tenant, max_active_jobs=max_active_jobs, max_dataset_bytes=max_dataset_bytes)
    except TrainqError as error:
        err.print(f"trainq: {error.message}", markup=False)
        raise typer.Exit(1) from None
    err.print(
        f"tenant {tenant}: max_active_jobs {_limit(max_active_jobs)}, max_dataset_bytes {_limit(max_dataset_bytes)}"
    )


def _limit(value: int | None) -> str:
    return "no limit" if value is None else str(value)


def ensure_local_key(settings: Settings) -> str:
    """The admin key of the local tenant in `settings.key_file`: the one there if this
    database knows it, else a new one, saved there readable by this user only."""
    # imported here, not at the top: `trainq --help` loads no database code
    from trainq.services.db.session import session_factory, session_scope
    from trainq.services.tenants import keys
    from trainq.services.tenants.principal import DEFAULT_TENANT

    path = settings.key_file
    with session_scope(session_factory(settings)) as session:
        try:
            saved = path.read_text().strip()
        except FileNotFoundError:
            saved = ""
        if saved and keys.valid(session, saved):
            return saved
        _, key = keys.issue(session, DEFAULT_TENANT, admin=True)
        # written whole, 0600 from its creation, then moved over any older file
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(key + "\n")
        os.replace(staged, path)
    return key


def _shown(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
