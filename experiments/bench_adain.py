"""Speed of AdaIN stylization on this machine: fp32 vs bf16, FLOPs vs matmul peak, folder mode vs per pair.

    python -m experiments.bench_adain [--size 512] [--pairs 10] [--repeats 3] [--encoders vgg19 mobilenet_v2]

For each encoder (random weights; timings do not depend on them) it reports

* one ``size × size`` stylization (content and style of that size: two encoder passes and one decoder
  pass) in fp32 and in bf16 (autocast), the speed ratio, and the PSNR of the bf16 output against the fp32
  output. The random decoder is He-initialised and its last conv rescaled so that its fp32 output spans
  [0, 1] like a trained decoder's (see :func:`calibrate_decoder`) — otherwise the clamp to [0, 1]
  saturates most pixels and the PSNR means nothing. MobileNetV2 uses its ImageNet weights when
  ``../shared/weights`` has them; VGG-19 has random weights (its ImageNet file is not available offline);
* the convolution FLOPs of that stylization (``torch.utils.flop_counter.FlopCounterMode``, 2 per MAC) and
  the achieved fraction of this machine's fp32 (and bf16) peak, measured as a large matmul;
* folder-mode throughput for ``pairs`` contents × 1 style (the style encoded once, its statistics reused)
  against stylizing every pair from scratch (the style encoded each time), in fp32 and bf16, on in-memory
  tensors (image file I/O is the same for both and left out).

The contents are the AdaIN paper's test images from ``../shared`` when present (random noise otherwise),
resized and centre-cropped to ``size × size``.
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from adain.decoders import build_decoder
from adain.encoders import build_encoder
from adain.io import list_images, load_image
from adain.model import AdaINModel
from experiments.measure import median_time

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
PAPER_DIR = SHARED_DIR / "data" / "adain-paper"
#: Real encoder weights are used where ../shared has them (torchvision's MobileNetV2 ImageNet file).
SHARED_WEIGHTS = {"mobilenet_v2": SHARED_DIR / "weights" / "mobilenet_v2-b0353104.pth"}


def bench_encoder_network(name: str) -> tuple[torch.nn.Module, str]:
    """The encoder ``name``: ImageNet weights from ../shared where available, else random weights."""
    path = SHARED_WEIGHTS.get(name)
    if path is not None and path.is_file():
        return build_encoder(name, weights=path), f"ImageNet weights from {path.name}"
    return build_encoder(name, weights=None), "random weights"


def cpu_flags() -> set[str]:
    """CPU feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def matmul_peak(dtype: torch.dtype, n: int = 4096, repeats: int = 3) -> float:
    """FLOP/s of an ``n × n`` by ``n × n`` matmul in ``dtype`` (median of ``repeats``)."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    return 2 * n**3 / median_time(lambda: a @ b, repeats=repeats)


def _crop_square(img: torch.Tensor, size: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return img[:, top : top + size, left : left + size]


def test_images(size: int, count: int) -> tuple[list[torch.Tensor], torch.Tensor, str]:
    """``count`` contents and one style, ``[3, size, size]`` each, and where they came from."""
    if (PAPER_DIR / "content").is_dir() and (PAPER_DIR / "style").is_dir():
        paths = list_images(PAPER_DIR / "content")
        contents = [_crop_square(load_image(paths[i % len(paths)], size=size), size) for i in range(count)]
        style = _crop_square(load_image(PAPER_DIR / "style" / "la_muse.jpg", size=size), size)
        return contents, style, f"AdaIN paper images ({PAPER_DIR})"
    g = torch.Generator().manual_seed(0)
    return [torch.rand(3, size, size, generator=g) for _ in range(count)], torch.rand(3, size, size), "noise"


def calibrate_decoder(model: AdaINModel, content: torch.Tensor, style: torch.Tensor) -> None:
    """Give the random decoder a trained decoder's signal levels.

    Convs get He (Kaiming-normal, fan-in) weights and zero biases, so that every layer passes the feature
    variation on (PyTorch's default init shrinks it, leaving a near-constant, bias-dominated output whose
    tiny variation bf16 rounding wipes out); then the last conv is rescaled so that the fp32 output on
    (content, style) has mean 0.5 and std 0.2 per channel.
    """
    with torch.no_grad():
        for m in model.decoder.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                torch.nn.init.zeros_(m.bias)
    last = model.decoder[-1]
    captured: dict[str, torch.Tensor] = {}
    hook = last.register_forward_hook(lambda _m, _i, out: captured.__setitem__("out", out.detach()))
    model.stylize(content, style)
    hook.remove()
    out = captured["out"].float()
    mean = out.mean(dim=(0, 2, 3))
    std = out.std(dim=(0, 2, 3)).clamp_min(1e-12)
    with torch.no_grad():
        scale = 0.2 / std
        last.weight.mul_(scale.view(-1, 1, 1, 1))
        last.bias.copy_((last.bias - mean) * scale + 0.5)


def conv_flops(fn: Callable[[], object]) -> tuple[int, int]:
    """(convolution FLOPs, all counted FLOPs) of ``fn()``."""
    with FlopCounterMode(display=False) as counter:
        fn()
    counts = counter.get_flop_counts().get("Global", {})
    conv = sum(v for op, v in counts.items() if "convolution" in str(op))
    return int(conv), int(counter.get_total_flops())


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [0, 1]."""
    mse = float((a.float() - b.float()).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def bench_encoder(
    name: str, contents: list[torch.Tensor], style: torch.Tensor, peaks: dict[str, float], repeats: int
) -> None:
    torch.manual_seed(0)
    encoder, weights = bench_encoder_network(name)
    model = AdaINModel(encoder, build_decoder(name))
    content = contents[0]
    calibrate_decoder(model, content, style)
    size = tuple(content.shape[-2:])
    print(f"\n== {name} (encoder: {weights}; decoder: random, calibrated), {size[0]}×{size[1]} ==")

    conv, total = conv_flops(lambda: model.stylize(content, style))
    stats = model.encode_style(style)
    conv_pair, _ = conv_flops(lambda: model.stylize(content, stats))
    print(
        f"conv FLOPs per stylization: {conv / 1e9:.1f} GFLOP (all counted ops {total / 1e9:.1f});"
        f" with reused style statistics {conv_pair / 1e9:.1f} GFLOP"
    )

    results: dict[str, tuple[float, torch.Tensor]] = {}
    for precision in ("fp32", "bf16"):
        model.precision = precision
        t = median_time(lambda: model.stylize(content, style), repeats=repeats)
        results[precision] = (t, model.stylize(content, style))
    model.precision = "fp32"
    nchw = AdaINModel(copy.deepcopy(model.encoder), copy.deepcopy(model.decoder), channels_last=False)
    nchw.to(memory_format=torch.contiguous_format)
    t_nchw = median_time(lambda: nchw.stylize(content, style), repeats=repeats)

    (t32, out32), (t16, out16) = results["fp32"], results["bf16"]
    print(
        f"fp32 (channels_last) : {t32 * 1e3:8.1f} ms   {conv / t32 / 1e9:7.1f} GFLOP/s conv = "
        f"{conv / t32 / peaks['fp32']:.0%} of the fp32 matmul peak"
    )
    print(f"fp32 (NCHW)          : {t_nchw * 1e3:8.1f} ms   {conv / t_nchw / 1e9:7.1f} GFLOP/s conv")
    print(
        f"bf16 (channels_last) : {t16 * 1e3:8.1f} ms   {conv / t16 / 1e9:7.1f} GFLOP/s conv = "
        f"{conv / t16 / peaks['bf16']:.0%} of the bf16 matmul peak"
    )
    print(f"bf16 speed-up        : {t32 / t16:.2f}×   PSNR(bf16 vs fp32) = {psnr(out16, out32):.1f} dB")

    for precision in ("fp32", "bf16"):
        model.precision = precision

        def folder() -> None:
            st = model.encode_style(style)
            for c in contents:
                model.stylize(c, st)

        def per_pair() -> None:
            for c in contents:
                model.stylize(c, style)

        t_folder = median_time(folder, repeats=1, warmup=0)
        t_pairs = median_time(per_pair, repeats=1, warmup=0)
        n = len(contents)
        print(
            f"{n} contents × 1 style, {precision}: folder mode {n / t_folder:.2f} img/s, per pair "
            f"{n / t_pairs:.2f} img/s -> {t_pairs / t_folder:.2f}× "
        )
    model.precision = "fp32"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="content and style side (default 512)")
    parser.add_argument("--pairs", type=int, default=10, help="contents for the folder-mode run (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of one stylization")
    parser.add_argument("--encoders", nargs="+", default=["vgg19", "mobilenet_v2"])
    args = parser.parse_args(argv)

    start = time.perf_counter()
    flags = cpu_flags()
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    wanted = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx512_fp16")
    print("bf16-relevant CPU flags: " + ", ".join(f"{f}={'yes' if f in flags else 'no'}" for f in wanted))
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(
        f"matmul peak (4096³): fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s"
    )
    contents, style, source = test_images(args.size, args.pairs)
    print(f"images: {source}")
    with torch.inference_mode():
        for name in args.encoders:
            bench_encoder(name, contents, style, peaks, args.repeats)
    print(f"\ntotal benchmark time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
