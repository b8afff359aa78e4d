"""Run the public PyTorch AdaIN port's unmodified ``train.py`` on the CPU and time its iterations.

    python -m experiments.port_train_runner PORT_DIR TIMES_FILE -- [train.py arguments]

Used by :mod:`experiments.bench_train` for the side-by-side comparison; nothing of the port is copied.
The port hard-codes ``torch.device('cuda')`` and imports ``tensorboardX``: while its script runs, moving a
module or tensor ``.to()`` a CUDA device moves it to the CPU instead, and ``tensorboardX.SummaryWriter`` is
a no-op stand-in.
The time of every ``optimizer.step()`` (Adam) is appended to ``TIMES_FILE``, one ``perf_counter`` value per
line, so the caller measures the seconds per iteration of the port's own loop.
"""

from __future__ import annotations

import runpy
import sys
import time
import types
from pathlib import Path

import torch


def main(argv: list[str]) -> None:
    port, times_file, rest = Path(argv[0]), Path(argv[1]), argv[argv.index("--") + 1 :]
    cpu = torch.device("cpu")

    def on_cpu(args: tuple[object, ...]) -> tuple[object, ...]:
        return tuple(cpu if isinstance(a, torch.device) and a.type == "cuda" else a for a in args)

    module_to, tensor_to = torch.nn.Module.to, torch.Tensor.to

    class _NoWriter:
        def __init__(self, *args: object, **kwargs: object) -> None: ...
        def add_scalar(self, *args: object, **kwargs: object) -> None: ...
        def close(self) -> None: ...

    stub = types.ModuleType("tensorboardX")
    stub.SummaryWriter = _NoWriter  # type: ignore[attr-defined]
    sys.modules["tensorboardX"] = stub
    step = torch.optim.Adam.step

    def timed_step(self: torch.optim.Adam, *args: object, **kwargs: object) -> object:
        out = step(self, *args, **kwargs)
        with open(times_file, "a") as fh:
            fh.write(f"{time.perf_counter()}\n")
        return out

    torch.optim.Adam.step = timed_step  # type: ignore[method-assign]
    torch.nn.Module.to = lambda self, *a, **k: module_to(self, *on_cpu(a), **k)  # type: ignore
    torch.Tensor.to = lambda self, *a, **k: tensor_to(self, *on_cpu(a), **k)  # type: ignore
    sys.path.insert(0, str(port))
    sys.argv = [str(port / "train.py"), *rest]
    try:
        runpy.run_path(str(port / "train.py"), run_name="__main__")
    finally:
        torch.nn.Module.to, torch.Tensor.to = module_to, tensor_to  # type: ignore[method-assign]
        torch.optim.Adam.step = step  # type: ignore[method-assign]


if __name__ == "__main__":
    main(sys.argv[1:])
