"""The device a worker serves, found at start: a CUDA GPU, else the CPU.

The parent worker process only looks (nvidia-smi, whether an array library is installed)
and never initialises CUDA: CUDA does not survive a fork, and Celery forks the processes
that train. Each of those imports its array library on its first job (`namespace`).
`TRAINQ_WORKER_DEVICE` / `--device` and `TRAINQ_ARRAY_LIBRARY` / `--array-library`
override what is found: `--device gpu --array-library torch` on a machine without a GPU
serves the `gpu` queue through torch on the CPU (how the cluster test runs that path).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from typing import Any

from trainq.services.errors import InvalidInput
from trainq.services.jobs.states import Device
from trainq.services.settings import Settings

GPU_LIBRARIES = ("cupy", "torch")
NVIDIA_SMI_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class WorkerDevice:
    kind: Device  # cpu or gpu: which queue the worker serves
    name: str  # e.g. "NVIDIA H100 80GB HBM3", or the CPU's description
    memory_bytes: int | None  # the GPU's memory, or the machine's
    array_library: str  # numpy, torch or cupy: what the engine computes with

    def namespace(self) -> tuple[Any, Any]:
        """(xp, device) for the engine, imported on first use in this process."""
        return _namespace(self.array_library)


CPU_NUMPY = WorkerDevice(Device.cpu, "cpu", None, "numpy")


def detect(settings: Settings) -> WorkerDevice:
    gpu = _nvidia_gpu()
    kind = Device(settings.worker_device or (Device.gpu if gpu else Device.cpu))
    library = settings.array_library or _default_library(kind)
    if kind is Device.gpu and library == "numpy":
        raise InvalidInput("TRAINQ_ARRAY_LIBRARY", "numpy cannot compute on a GPU: use torch or cupy")
    if importlib.util.find_spec(library) is None:
        raise InvalidInput("TRAINQ_ARRAY_LIBRARY", f"{library} is not installed")
    memory: int | None
    if kind is Device.gpu and gpu is not None:
        name, memory = gpu
    elif kind is Device.gpu:
        name, memory = f"{library} on the CPU: no CUDA GPU seen, gpu asked for", _physical_memory()
    else:
        name, memory = f"{platform.machine()} CPU x{os.cpu_count()}", _physical_memory()
    return WorkerDevice(kind, name, memory, library)


def _default_library(kind: Device) -> str:
    if kind is Device.cpu:
        return "numpy"
    for library in GPU_LIBRARIES:
        if importlib.util.find_spec(library) is not None:
            return library
    raise InvalidInput("TRAINQ_ARRAY_LIBRARY", "a GPU worker needs cupy or torch installed")


def _nvidia_gpu() -> tuple[str, int] | None:
    """The first NVIDIA GPU's name and memory in bytes, from the driver (no CUDA context)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        answer = subprocess.run(
            [smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_SECONDS,
            check=True,
        ).stdout
        name, mebibytes = answer.splitlines()[0].rsplit(",", 1)
        return name.strip(), int(float(mebibytes)) * 2**20
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return None


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


@cache
def _namespace(library: str) -> tuple[Any, Any]:
    if library == "numpy":
        return None, None  # the engine's default
    if library == "torch":
        import torch

        return torch, "cuda" if torch.cuda.is_available() else "cpu"
    import cupy

    return cupy, None
