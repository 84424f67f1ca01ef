"""A job's or an evaluation's message is sent once the transaction that stored it commits:
never for one rolled back, and a failed send leaves the job stored for the requeue sweep."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import Broker, asgi_client
from tests.conftest import sqlite_settings
from tests.support.keys import TEST_PRINCIPAL
from trainq.api.app import create_app
from trainq.services import queue
from trainq.services.db.models import Job
from trainq.services.db.session import new_session_factory, session_scope
from trainq.services.jobs import submit as submitting
from trainq.services.jobs.states import Device
from trainq.services.settings import Settings
from trainq.services.spec import SEED_EXAMPLE, JobSpec


def test_importing_the_api_imports_no_worker_code_and_the_queue_module_does_nothing_on_import() -> None:
    probe = (
        "import sys\n"
        "import trainq.api.app, trainq.services.queue\n"
        "from kombu.transport import TRANSPORT_ALIASES\n"
        "from celery.signals import worker_ready, worker_shutdown\n"
        "print(sorted(m for m in sys.modules if m.startswith('trainq.worker')))\n"
        "print('trainq-sqlite' in TRANSPORT_ALIASES, len(worker_ready.receivers), len(worker_shutdown.receivers))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "False 0 0"]


def _submit(factory: sessionmaker[Session]) -> str:
    with session_scope(factory) as session:
        job, _ = submitting.store(
            session,
            TEST_PRINCIPAL,
            JobSpec.model_validate(SEED_EXAMPLE),
            name=None,
            device=Device.cpu,
            idempotency_key=None,
        )
        return job.id


def test_a_job_is_sent_when_its_transaction_commits_and_never_when_it_rolls_back(
    settings: Settings, broker: Broker
) -> None:
    celery = queue.create_celery(settings)
    factory = new_session_factory(settings, queue.session_info(celery))
    with pytest.raises(RuntimeError), session_scope(factory) as session:
        submitting.store(
            session,
            TEST_PRINCIPAL,
            JobSpec.model_validate(SEED_EXAMPLE),
            name=None,
            device=Device.cpu,
            idempotency_key=None,
        )
        raise RuntimeError("the request failed after the job was stored")
    rolled_back = broker.take_all()
    committed = _submit(factory)

    assert rolled_back == []
    assert broker.take_all() == [(queue.RUN_JOB, [committed])]
    celery.close()


@pytest.mark.anyio
async def test_a_submit_whose_send_fails_is_201_and_the_job_waits_queued_for_the_requeue_sweep(
    sqlite_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = sqlite_settings(sqlite_home, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    app = create_app(settings)
    with caplog.at_level(logging.ERROR, logger="trainq.services.queue"):
        async with asgi_client(app) as client:
            response = await client.post("/v1/jobs", json=SEED_EXAMPLE)

    assert response.status_code == 201
    with app.state.session_factory() as session:
        job = session.execute(select(Job).where(Job.id == response.json()["id"])).scalar_one()
    assert job.status == "queued" and job.enqueued_at is not None
    assert "the requeue sweep will send" in caplog.text
