"""Where a submit spends its time: pyinstrument over POST /v1/jobs, on PostgreSQL + Redis.

    .venv/bin/python -m bench.submit_profile [--submits 300]

Starts a throwaway PostgreSQL and Redis (the test harness's) and migrates; then submits the
seed job (5 epochs) `--submits` times through the API built in this process (Starlette's
TestClient: the time of a whole request), and as many times through what the route does
(parse the body, submit in one session scope, shape the answer; its messages sent after
the commit) under pyinstrument, whose call tree is printed (frames under 2 % hidden).
The route runs in a worker thread, which pyinstrument does not follow: hence the second
loop, in this thread. Not run in CI.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from pyinstrument import Profiler
from sqlalchemy import make_url
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from bench.service import TINY_JOB
from tests.support import keys
from tests.support.postgres import PostgresServer
from tests.support.processes import BIN, process_env
from tests.support.redis import RedisServer
from trainq.api.app import create_app
from trainq.api.schemas import JobCreate, JobRead
from trainq.services.db.session import session_scope
from trainq.services.jobs.submit import submit_job
from trainq.services.settings import Settings
from trainq.services.workers.registry import OnlineKinds, waiting_reason

WARM_UP = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submits", type=int, default=300)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="trainq-profile-"))
    with PostgresServer() as postgres:
        redis = RedisServer().start()
        try:
            url = make_url(postgres.create_database("profile")).set(drivername="postgresql")
            env = {
                "DATABASE_URL": url.render_as_string(hide_password=False),
                "REDIS_URL": redis.url,
                "TRAINQ_HOME": str(folder),
            }
            done = subprocess.run([str(BIN / "trainq"), "db", "upgrade"], env=process_env(env), capture_output=True)
            assert done.returncode == 0, done.stderr
            settings = Settings.model_validate(env)
            keys.grant_in(settings)
            app = create_app(settings)
            with TestClient(app, headers=keys.HEADERS) as client:
                for _ in range(WARM_UP):
                    assert client.post("/v1/jobs", json=TINY_JOB).status_code == 201
                started = time.perf_counter()
                for _ in range(args.submits):
                    assert client.post("/v1/jobs", json=TINY_JOB).status_code == 201
                over_http = (time.perf_counter() - started) / args.submits
                factory, online = app.state.session_factory, app.state.online_kinds
                profiler = Profiler(interval=0.0002)
                started = time.perf_counter()
                with profiler:
                    for _ in range(args.submits):
                        submit_as_the_route_does(factory, online)
                in_thread = (time.perf_counter() - started) / args.submits
        finally:
            redis.close()
    print(f"{args.submits} submits over HTTP (TestClient): {over_http * 1000:.2f} ms each")
    print(f"{args.submits} submits as the route does, profiled: {in_thread * 1000:.2f} ms each")
    print(profiler.output_text(unicode=True, color=False, show_all=False, time="percent_of_total"))


def submit_as_the_route_does(factory: sessionmaker[Session], online: OnlineKinds) -> str:
    body = JobCreate.model_validate(TINY_JOB)
    with session_scope(factory) as session:
        job, _ = submit_job(
            session, keys.TEST_PRINCIPAL, body, name=body.name, device=body.device, idempotency_key=None
        )
        reason = waiting_reason(job, online(session))
        answer = JobRead.of(job, reason=reason)
    return answer.model_dump_json(by_alias=True)


if __name__ == "__main__":
    main()
