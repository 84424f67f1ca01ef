"""The settings refuse heartbeats too slow for the deadlines they keep."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trainq.services.settings import Settings


def test_the_defaults_hold() -> None:
    settings = Settings()
    assert settings.heartbeat_seconds * 2 <= settings.lease_seconds


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"TRAINQ_LEASE_SECONDS": "1", "TRAINQ_HEARTBEAT_SECONDS": "3"}, "TRAINQ_HEARTBEAT_SECONDS"),
        ({"TRAINQ_LEASE_SECONDS": "9", "TRAINQ_HEARTBEAT_SECONDS": "5"}, "TRAINQ_LEASE_SECONDS"),
        (
            {"TRAINQ_WORKER_LOST_AFTER_SECONDS": "6", "TRAINQ_WORKER_HEARTBEAT_SECONDS": "5"},
            "TRAINQ_WORKER_LOST_AFTER_SECONDS",
        ),
    ],
)
def test_a_lease_renewed_less_than_twice_in_its_span_is_refused(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert named in str(caught.value)
