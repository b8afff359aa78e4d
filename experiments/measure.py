"""Timing and peak-memory measurement shared by the experiment and benchmark scripts."""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["median_time", "peak_extra_memory"]


def median_time(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (Linux), or None where there is none."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's resident high-water mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _status_kib("VmHWM") is not None
    except OSError:
        return False


def _child(setup: Callable[..., Any], run: Callable[[Any], Any], args: tuple, queue: Any) -> None:
    try:
        state = setup(*args)
        if _reset_peak_rss():
            # the import of torch leaves a transient high-water mark; measure from the current RSS
            before = _status_kib("VmRSS")
            run(state)
            extra = (_status_kib("VmHWM") - before) * 1024
        else:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            run(state)
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            extra = (after - before) * (
                1 if sys.platform == "darwin" else 1024
            )  # bytes on macOS, KiB on Linux
        queue.put(("ok", max(extra, 0)))
    except BaseException as exc:  # report any failure (MemoryError included) to the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def peak_extra_memory(setup: Callable[..., Any], run: Callable[[Any], Any], *args: Any) -> int:
    """Peak resident memory that ``run(setup(*args))`` adds on top of ``setup``, in bytes.

    Runs in a fresh (spawned) process so that the high-water mark belongs to this measurement alone.
    ``setup`` and ``run`` must be importable module-level functions. Raises ``RuntimeError`` with the
    child's message if it fails.
    """
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(setup, run, args, queue))
    proc.start()
    status, value = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(value)
    return int(value)
