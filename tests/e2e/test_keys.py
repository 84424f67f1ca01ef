"""`trainq keys` on the database directly: a key made by `create` is printed once and
works; `list` never shows a key; after `revoke` it is refused. The command line without a
key says how to give one."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import seed_spec
from tests.support.processes import BIN, process_env

pytestmark = pytest.mark.e2e

DEADLINE_SECONDS = 60


def trainq(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "trainq"), *args],
        env=process_env({**stack.env, "COLUMNS": "200", **env}),
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"rc {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


def jobs_answer(stack: Stack, key: str) -> httpx.Response:
    assert stack.api is not None
    return httpx.get(f"{stack.api.base_url}/v1/jobs", headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_a_created_key_works_is_never_listed_and_is_refused_once_revoked(stack: Stack) -> None:
    created = trainq(stack, "keys", "create", "--tenant", "alice")
    key = ok(created).strip()
    assert key.startswith("tq_") and len(key) >= 40, created.stdout
    key_id = key.split("_")[1]
    assert f"API key {key_id} for tenant alice" in created.stderr and key not in created.stderr
    assert jobs_answer(stack, key).status_code == 200

    listed = ok(trainq(stack, "keys", "list"))
    assert key_id in listed and "alice" in listed and key.split("_", 2)[2] not in listed
    rows = {row["id"]: row for row in map(json.loads, ok(trainq(stack, "keys", "list", "--json")).splitlines())}
    assert rows[key_id]["tenant"] == "alice" and rows[key_id]["lastUsedAt"] is not None
    assert rows[key_id]["revokedAt"] is None and not rows[key_id]["admin"]

    ok(trainq(stack, "keys", "revoke", key_id))
    refused = jobs_answer(stack, key)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    rows = {row["id"]: row for row in map(json.loads, ok(trainq(stack, "keys", "list", "--json")).splitlines())}
    assert rows[key_id]["revokedAt"] is not None


def test_an_admin_key_is_listed_as_such_and_a_bad_tenant_name_or_unknown_id_is_refused(stack: Stack) -> None:
    key = ok(trainq(stack, "keys", "create", "--tenant", "ops", "--admin")).strip()
    rows = [json.loads(line) for line in ok(trainq(stack, "keys", "list", "--json")).splitlines()]
    assert {"tenant": "ops", "admin": True} in [{k: row[k] for k in ("tenant", "admin")} for row in rows]
    assert jobs_answer(stack, key).status_code == 200
    bad = trainq(stack, "keys", "create", "--tenant", "Not A Name")
    assert bad.returncode == 2 and "lowercase letters" in bad.stderr, bad.stderr
    unknown = trainq(stack, "keys", "revoke", "000000000000")
    assert unknown.returncode == 1 and "API key 000000000000 not found" in unknown.stderr


def test_the_command_line_without_a_key_says_how_to_give_one(stack: Stack) -> None:
    assert stack.api is not None
    done = trainq(stack, "jobs", "--url", stack.api.base_url, TRAINQ_API_KEY="")
    assert done.returncode == 1
    assert "An API key is required" in done.stderr and "TRAINQ_API_KEY" in done.stderr, done.stderr
    uploaded = trainq(stack, "datasets", "list", "--url", stack.api.base_url, TRAINQ_API_KEY="")
    assert uploaded.returncode == 1 and "TRAINQ_API_KEY" in uploaded.stderr, uploaded.stderr


def test_a_tenant_s_quota_set_from_the_command_line_answers_429_past_it(stack: Stack) -> None:
    assert stack.api is not None
    key = ok(trainq(stack, "keys", "create", "--tenant", "quota")).strip()
    ok(trainq(stack, "tenants", "set", "quota", "--max-active-jobs", "1"))
    assert "quota" in ok(trainq(stack, "tenants", "list"))
    with httpx.Client(base_url=stack.api.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        assert client.post("/v1/jobs", json=seed_spec()).status_code == 201
        refused = client.post("/v1/jobs", json=seed_spec())
    assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    assert "max_active_jobs" in refused.json()["detail"]
    unknown = trainq(stack, "tenants", "set", "nobody", "--max-active-jobs", "1")
    assert unknown.returncode == 1 and "tenant nobody not found" in unknown.stderr
