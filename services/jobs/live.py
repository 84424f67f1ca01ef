"""Telling the API at once that a job changed, so its event streams read it without polling.

On PostgreSQL + Redis a worker publishes the job's id on a Redis pub/sub channel after each
committed report and after the job ends; an event stream subscribed to it re-reads the
job (`services.jobs.events`). The message carries no data: it may be lost (pub/sub keeps
nothing for a subscriber that is not listening), so a stream also re-reads every
`FALLBACK_SECONDS`, and a lost message costs latency, never an event.

Why Redis and not PostgreSQL's LISTEN/NOTIFY: the broker is already there, a subscriber
holds a Redis connection rather than one of the database's, and a NOTIFY takes a lock
that serialises every notifying transaction's commit, on the database this work is meant
to unload. On the embedded default (no Redis) a stream polls its SQLite database instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Protocol

import redis
import redis.asyncio

log = logging.getLogger(__name__)

# how often a stream re-reads the job with no message: on Redis, a bound on what a lost
# message costs; on the embedded default, the latency of every event
FALLBACK_SECONDS = 5.0
POLL_SECONDS = 0.1


def channel(job_id: str) -> str:
    return f"trainq:job:{job_id}"


class Changes(Protocol):
    async def wait(self, timeout: float) -> None:
        """Return when the job changed, or after `timeout` seconds."""


class Publisher:
    """A worker's side: one Redis connection pool per process (made after the pool's fork)."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def __call__(self, job_id: str) -> None:
        try:
            _client(self.redis_url).publish(channel(job_id), "changed")
        except redis.RedisError as error:
            # the stream's fallback re-read covers a lost notice; the job must not fail for it
            log.warning("job %s: could not publish its change (%s)", job_id, error)


@lru_cache
def _client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)


class Subscription:
    def __init__(self, pubsub: redis.asyncio.client.PubSub) -> None:
        self.pubsub = pubsub

    async def wait(self, timeout: float) -> None:
        try:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        except redis.RedisError as error:
            log.warning("event stream: Redis failed (%s); re-reading in %.0f s", error, FALLBACK_SECONDS)
            await asyncio.sleep(timeout)
            return
        # several reports may have come together: one read serves them all
        while message is not None:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0)


class Polling:
    async def wait(self, timeout: float) -> None:
        await asyncio.sleep(min(timeout, POLL_SECONDS))


@asynccontextmanager
async def subscribed(client: redis.asyncio.Redis | None, job_id: str) -> AsyncIterator[Changes]:
    """The changes of one job: subscribed before the stream's first read, so no change
    between the read and the subscription is missed."""
    if client is None:
        yield Polling()
        return
    pubsub = client.pubsub()
    try:
        try:
            await pubsub.subscribe(channel(job_id))
        except redis.RedisError as error:
            log.warning("event stream: cannot subscribe (%s); polling the database instead", error)
            yield Polling()
        else:
            yield Subscription(pubsub)
    finally:
        await pubsub.aclose()
