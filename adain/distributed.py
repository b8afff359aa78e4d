"""Process-group helpers for multi-process training under ``torchrun`` (DistributedDataParallel).

>>> with process_group() as dist:          # reads RANK / WORLD_SIZE / LOCAL_RANK from torchrun's env
...     dist.rank, dist.world_size, dist.is_main
(0, 1, True)                               # without torchrun: a single process, no process group

The group (gloo on CPU, nccl on CUDA) lives only inside the ``with`` block; no global state is kept
outside ``torch.distributed`` itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as tdist

__all__ = ["Distributed", "env_world_size", "process_group"]


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run: ``world_size == 1`` means no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier()

    def all_reduce(self, values: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """In place over all ranks (``"sum"`` or ``"max"``); the tensor unchanged for one process."""
        if self.enabled:
            tdist.all_reduce(values, op=tdist.ReduceOp.SUM if op == "sum" else tdist.ReduceOp.MAX)
        return values


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@contextlib.contextmanager
def process_group(device_type: str = "cpu") -> Iterator[Distributed]:
    """Init the default process group from torchrun's environment for the block, destroy it after.

    ``device_type`` "cuda" picks nccl (and sets the current device to ``LOCAL_RANK``), else gloo.
    """
    world_size = env_world_size()
    if world_size <= 1:
        yield Distributed()
        return
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    tdist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    try:
        yield Distributed(rank, world_size, local_rank)
    finally:
        tdist.destroy_process_group()
