"""Where a benchmark's CPU goes: the CPU time of process trees, read from /proc (Linux).

A tree's time is that of its root and every descendant alive at the reading, with what
its processes already reaped spent (cutime, cstime): a PostgreSQL backend that exited
still counts, in the postmaster's."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float]]:
    """Every process: its parent and its CPU seconds (its own and its reaped children's)."""
    found: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited meanwhile
        # the fields after the command's name, which may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        found[int(entry.name)] = (int(fields[1]), (utime + stime + cutime + cstime) / TICKS_PER_SECOND)
    return found


def cpu_seconds(roots: Mapping[str, list[int]]) -> dict[str, float]:
    """The CPU seconds of each named group of process trees (by their roots' pids)."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    spent: dict[str, float] = {}
    for name, pids in roots.items():
        tree, stack = set(), list(pids)
        while stack:
            pid = stack.pop()
            if pid in processes and pid not in tree:
                tree.add(pid)
                stack.extend(children.get(pid, []))
        spent[name] = sum(processes[pid][1] for pid in tree)
    return spent


def own_cpu_seconds() -> float:
    """This process's CPU seconds: the benchmark's own clients."""
    times = os.times()
    return times.user + times.system


CLIENTS = "clients (this process)"


@contextmanager
def spent(parts: Mapping[str, list[int]]) -> Iterator[dict[str, float]]:
    """The CPU seconds each named part (`cpu_seconds`) and this process (the benchmark's
    clients, under CLIENTS) spend in the block, filled in when it ends."""
    parts_before, clients_before = cpu_seconds(parts), own_cpu_seconds()
    seconds: dict[str, float] = {}
    yield seconds
    parts_after, clients_after = cpu_seconds(parts), own_cpu_seconds()
    seconds.update({name: parts_after[name] - parts_before[name] for name in parts})
    seconds[CLIENTS] = clients_after - clients_before


def per_job(seconds: Mapping[str, float], jobs: int) -> str:
    """`spent`'s figures as milliseconds per job: "API 4.10 ms, workers 6.00 ms, ..."."""
    return ", ".join(f"{name} {total / jobs * 1000:.2f} ms" for name, total in seconds.items())
