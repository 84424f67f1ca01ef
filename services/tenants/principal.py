"""Who a request acts for: a `Principal`, the tenant of the API key it carried.

Every service function that reads or changes a tenant's work takes one and filters by it:
another tenant's job, dataset, sweep or evaluation is not found (404, not 403: its
existence is not revealed). An admin key sees every tenant's work, and may narrow its
view to one tenant (`only`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, true
from sqlalchemy.orm import Session

from trainq.services.db.models import Dataset, Evaluation, Job, StoredModel, Sweep
from trainq.services.errors import InvalidInput, NotFound

# the tenant of the embedded default, and of every row stored before tenants existed
DEFAULT_TENANT = "default"
TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")

Owned = TypeVar("Owned", Job, Dataset, Sweep, StoredModel, Evaluation)


@dataclass(frozen=True)
class Principal:
    tenant: str  # what it creates belongs to this tenant
    admin: bool = False  # sees and acts on every tenant's work
    key_id: str | None = None  # the public id of the key it authenticated with

    def sees(self, tenant: str) -> bool:
        return self.admin or tenant == self.tenant

    def find(self, session: Session, kind: type[Owned], row_id: str, missing: NotFound) -> Owned:
        """The `kind` row of `row_id`, if it may see it; else `missing` is raised, as if there were none."""
        row = session.get(kind, row_id)
        if row is None or not self.sees(row.tenant):
            raise missing
        return row

    def visible(self, column: Any) -> ColumnElement[bool]:
        """The WHERE clause of what it may see, on a table's `tenant` column."""
        return true() if self.admin else column == self.tenant

    def only(self, tenant: str | None) -> Principal:
        """Its view narrowed to `tenant` (None: unchanged); only an admin sees another tenant's."""
        if tenant is None or (tenant == self.tenant and not self.admin):
            return self
        if not self.admin:
            raise InvalidInput("query.tenant", "only an admin key sees another tenant's work")
        return replace(self, tenant=tenant, admin=False)


# The workers, the requeue sweep and the commands run on the database directly: they act
# on whatever is stored, whoever owns it.
EVERYONE = Principal(tenant=DEFAULT_TENANT, admin=True)


def tenant_name(name: str) -> str:
    if not TENANT_NAME.fullmatch(name):
        raise InvalidInput(
            "tenant", "1 to 64 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name
