"""One call made from several threads at the same moment, as racing requests make it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(call: Callable[[], T], times: int = 4, timeout: float = 30) -> list[T]:
    """What each of `times` threads, released together, got from `call`."""
    barrier = threading.Barrier(times)
    results: list[T] = []

    def run() -> None:
        barrier.wait()
        results.append(call())

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    # a call that raised shows its traceback (pytest reports an unhandled thread exception)
    assert len(results) == times, f"{times - len(results)} of {times} racing calls failed or hung"
    return results
