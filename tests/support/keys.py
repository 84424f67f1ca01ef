"""The test session's API key, given by default to everything the harness starts.

One key of the `default` tenant, made once per test session, stored in every database the
harness makes (the migrated templates the API and service tests copy, each end-to-end
stack's and cluster's database), and sent by every client: `Api.client()` and the API
tests' client as a header, `TrainqClient` and the CLI through TRAINQ_API_KEY (set for the
test process in tests/conftest.py, passed on by `process_env`), the dashboard through its
URL's `#key=` (`with_key`). A test about keys makes keys of its own.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from trainq.services.db.session import create_engine_for, session_scope
from trainq.services.settings import Settings
from trainq.services.tenants import keys
from trainq.services.tenants.principal import DEFAULT_TENANT, Principal

TEST_KEY = keys.new_key()
HEADERS = {"Authorization": f"Bearer {TEST_KEY}"}
# whom the test key authenticates as: what service tests act as
TEST_PRINCIPAL = Principal(DEFAULT_TENANT)


def grant(session: Session) -> None:
    keys.store(session, DEFAULT_TENANT, TEST_KEY)


def grant_in(settings: Settings) -> None:
    """Store the test key in the (migrated) database of `settings`."""
    engine = create_engine_for(settings)
    try:
        with session_scope(sessionmaker(engine)) as session:
            grant(session)
    finally:
        engine.dispose()


def with_key(base_url: str, key: str = TEST_KEY) -> str:
    """The dashboard's URL carrying `key` in its fragment, as `trainq up` prints it."""
    return f"{base_url.rstrip('/')}/#key={key}"
