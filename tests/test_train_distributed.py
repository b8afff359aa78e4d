"""Multi-process training: ``adain train`` under ``torch.distributed.run`` (2 processes, gloo on CPU).

With ``--batch-size`` the combined batch, 2 processes (1 sample each) must follow the trajectory of one
process with batch 2: the ranks' shards form the same batch and DDP averages the per-rank gradients of
batch-mean losses, which equals the combined-batch gradient up to float summation order.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from adain.cli import main
from adain.train import load_checkpoint, read_log

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = ["--image-size", "40", "--crop-size", "32", "--batch-size", "2", "--encoder", "mobilenet_v2"]
# --precision fp32: torchrun's processes see the real CPU (auto may be bf16 there), the in-process run the
# AVX2-only host of conftest's avx2_only_host
RANDOM = [
    *TINY, "--random-encoder", "--device", "cpu", "--no-progress", "--samples", "1", "--precision", "fp32",
]  # fmt: skip


@pytest.fixture
def data(tmp_path: Path, write_random_images) -> tuple[Path, Path]:
    content, style = tmp_path / "content", tmp_path / "style"
    write_random_images(content, 4, 0)  # divisible by the 2 processes: the shards cover each epoch exactly
    write_random_images(style, 4, 1)
    return content, style


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _args(data: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    return ["train", "--content-dir", str(data[0]), "--style-dir", str(data[1]), "--output", str(out), *extra]


def _torchrun(args: list[str], nproc: int = 2) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "-m",
        "adain",
        *args,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def _single(args: list[str]) -> int:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(args)
    finally:
        torch.set_num_threads(before)


def _batch(args: list[str], size: str) -> list[str]:
    i = args.index("--batch-size")
    return [*args[: i + 1], size, *args[i + 2 :]]


def _assert_close(a: dict, b: dict) -> None:
    assert a["iteration"] == b["iteration"]
    assert a["decoder"].keys() == b["decoder"].keys()
    for key in a["decoder"]:
        torch.testing.assert_close(a["decoder"][key], b["decoder"][key], rtol=1e-5, atol=1e-6, msg=key)


@pytest.mark.slow
def test_two_processes_match_one_with_the_combined_batch_and_resume(data, tmp_path) -> None:
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    # 2 iterations, then resume to 4 under DDP (checkpoint and resume with 2 processes)
    proc = _torchrun(_args(data, ddp, *RANDOM, "--iterations", "2", "--checkpoint-every", "2"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("decoder_final.pth") == 1  # rank 0 only
    proc = _torchrun(_args(data, ddp, *RANDOM, "--resume", "--iterations", "4"))
    assert proc.returncode == 0, proc.stderr
    assert _single(_args(data, single, *RANDOM, "--iterations", "4", "--checkpoint-every", "2")) == 0

    a, b = load_checkpoint(ddp / "checkpoint.pth"), load_checkpoint(single / "checkpoint.pth")
    assert a["iteration"] == 4
    assert a["data"]["content"]["world_size"] == 2 and a["data"]["content"]["consumed"] == 4
    _assert_close(a, b)
    alone = tmp_path / "alone"  # what one rank sees alone (batch 1) takes another path: the test can tell
    assert _single(_args(data, alone, *_batch(RANDOM, "1"), "--iterations", "4")) == 0
    c = load_checkpoint(alone / "checkpoint.pth")
    assert max((c["decoder"][k] - v).abs().max() for k, v in b["decoder"].items()) > 1e-5
    ra, rb = read_log(ddp / "log.csv"), read_log(single / "log.csv")
    assert [r["iteration"] for r in ra] == [1, 2, 3, 4]  # one writer, no duplicated rows
    np.testing.assert_allclose([r["total"] for r in ra], [r["total"] for r in rb], rtol=1e-4)
    assert (ddp / "decoder_final.pth").is_file() and list((ddp / "samples").glob("*.png"))


def test_resume_with_another_process_count_is_refused(data, tmp_path) -> None:
    out = tmp_path / "run"
    assert _single(_args(data, out, *RANDOM, "--iterations", "1")) == 0
    proc = _torchrun(_args(data, out, *RANDOM, "--resume", "--iterations", "2"))
    assert proc.returncode != 0
    assert "same number" in proc.stderr


# ---- stopping together: a non-finite loss or a signal on one rank ----------------------------------------


def _worker(rank: int, port: int, data: tuple[Path, Path], out: Path, fault: str, results: Path) -> None:
    """One rank of a 2-process run in this test's own code, so that rank 1 can misbehave at iteration 2."""
    os.environ.update(
        {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"}
    )
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    from adain.distributed import process_group
    from adain.train import NonFiniteLossError, TrainConfig, Trainer

    config = TrainConfig(
        content_dir=str(data[0]),
        style_dir=str(data[1]),
        output=str(out),
        encoder="mobilenet_v2",
        pretrained=False,
        batch_size=2,
        image_size=40,
        crop_size=32,
        iterations=5,
        device="cpu",
        progress=False,
        num_samples=1,
    )
    with process_group("cpu") as dist:
        trainer = Trainer(config, dist=dist)
        losses = trainer.losses

        def faulty(
            content: torch.Tensor, style: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            loss_c, loss_s, loss_tv = losses(content, style)
            if rank == 1 and trainer.iteration == 1:  # during iteration 2
                if fault == "nan":
                    loss_s = loss_s * float("nan")
                else:
                    os.kill(os.getpid(), signal.SIGTERM)
            return loss_c, loss_s, loss_tv

        trainer.losses = faulty  # type: ignore[method-assign]
        try:
            result = trainer.run()
            outcome = f"stopped {result.stopped_by} at {result.iteration}"
        except NonFiniteLossError:
            outcome = f"nonfinite at {trainer.iteration}"
    (results / f"rank{rank}.txt").write_text(outcome)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["nan", "signal"])
def test_a_fault_on_one_rank_stops_all_ranks_at_the_same_iteration(data, tmp_path, fault) -> None:
    import torch.multiprocessing as mp

    results = tmp_path / "results"
    results.mkdir()
    out = tmp_path / "run"
    mp.start_processes(
        _worker, args=(_free_port(), data, out, fault, results), nprocs=2, join=True, start_method="spawn"
    )
    outcomes = {(results / f"rank{r}.txt").read_text() for r in range(2)}
    if fault == "nan":
        assert outcomes == {"nonfinite at 1"}  # before the step of iteration 2, on both ranks
        assert not (out / "checkpoint.pth").exists()
    else:
        assert outcomes == {f"stopped {int(signal.SIGTERM)} at 2"}  # iteration 2 finished, then stop
        assert load_checkpoint(out / "checkpoint.pth")["iteration"] == 2
        assert [r["iteration"] for r in read_log(out / "log.csv")] == [1, 2]
