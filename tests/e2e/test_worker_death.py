"""A worker killed mid-job: its lease runs out, another worker takes the job over and resumes
it from the last checkpoint, and the job ends exactly as if nothing had happened: the epochs
the victim reported after its last checkpoint are run again and recorded once."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

import numpy as np
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import get_job, history, long_spec, submit, wait_for_status, weights
from tests.support.processes import wait_for
from trainq.services.engine import fit
from trainq.services.spec import JobSpec

pytestmark = pytest.mark.e2e

# long enough for several checkpoints: a job that ends before the poll sees one past its
# checkpoint (300 epochs took 2 s once reports got cheap) proves nothing
EPOCHS = 2000
# a short lease so the takeover comes within seconds; the sweep re-sends a job whose lease expired
SHORT_LEASE = {
    "TRAINQ_LEASE_SECONDS": "2",
    "TRAINQ_HEARTBEAT_SECONDS": "0.2",
    "TRAINQ_REQUEUE_AFTER_SECONDS": "1",
}
# checkpoints 1 s apart and reports 0.1 s apart: the victim dies with epochs reported past its checkpoint
THROTTLED = {"TRAINQ_CHECKPOINT_INTERVAL_SECONDS": "1", "TRAINQ_REPORT_INTERVAL_SECONDS": "0.1"}


def test_a_job_whose_worker_dies_is_taken_over_and_resumed_from_its_checkpoint(stack: Stack) -> None:
    spec = long_spec(epochs=EPOCHS, samples=1000)
    victim = stack.worker("victim", {**SHORT_LEASE, **THROTTLED})
    with stack.client() as client:
        job = submit(client, spec)

        def past_a_checkpoint() -> bool:
            # epochs reported after a checkpoint, and the next checkpoint (1 s after it) still
            # well away; by the checkpoint's age, not by an epoch count, which a faster machine
            # outruns within one report (at 400 epochs a second one report holds 40; CI once never matched)
            rows = stack.query(
                "SELECT c.epoch < j.epochs_done AND clock_timestamp() - c.saved_at < interval '0.4 seconds'"
                " FROM checkpoints c JOIN jobs j ON j.id = c.job_id WHERE j.id = %s",
                job["id"],
            )
            return bool(rows) and bool(rows[0][0])

        wait_for(
            past_a_checkpoint,
            timeout=60,
            what="the victim reported epochs past a checkpoint",
            processes=stack.processes,
            state=lambda: get_job(client, job["id"]),
            interval=0.02,
        )
        victim.kill(signal.SIGKILL)  # the whole process group: no goodbye, no acknowledgement
        victim.popen.wait(10)
        killed_at = datetime.now(UTC)
        seen_before = history(client, job["id"])
        [(checkpoint_epoch, checkpoint_attempt)] = stack.query(
            "SELECT epoch, attempt FROM checkpoints WHERE job_id = %s", job["id"]
        )
        assert checkpoint_attempt == 1 and checkpoint_epoch < len(seen_before) < EPOCHS, (
            checkpoint_epoch,
            len(seen_before),
        )

        survivor = stack.worker("survivor", SHORT_LEASE)
        done = wait_for_status(
            client, job["id"], ("succeeded", "failed", "cancelled"), timeout=60, processes=stack.processes
        )
        assert done["status"] == "succeeded", done
        assert done["attempt"] == 2 and survivor.name in done["worker"], done

        rows = history(client, job["id"])
        assert [row["epoch"] for row in rows] == list(range(EPOCHS))
        # what the victim checkpointed stays as it reported it; what it reported after its
        # checkpoint was run again, with the same logs
        assert rows[:checkpoint_epoch] == seen_before[:checkpoint_epoch]
        assert [row["logs"] for row in rows[: len(seen_before)]] == [row["logs"] for row in seen_before]
        final = weights(client, job["id"])

    # epochs before the checkpoint were recorded by the victim and never again; the rest by the survivor
    recorded = stack.query("SELECT epoch, recorded_at FROM epochs WHERE job_id = %s ORDER BY epoch", job["id"])
    by_victim = [epoch for epoch, at in recorded if at < killed_at]
    assert by_victim == list(range(checkpoint_epoch)), (checkpoint_epoch, by_victim)

    # resuming is exact: the same weights as one uninterrupted fit of the same spec
    parsed = JobSpec.model_validate({k: v for k, v in spec.items() if k != "name"})
    x, y, _ = parsed.arrays()
    uninterrupted = fit(parsed.to_training_config(), x, y)
    for got, expected in zip(final, uninterrupted.weights, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert [row["logs"]["loss"] for row in rows] == uninterrupted.history["loss"]
