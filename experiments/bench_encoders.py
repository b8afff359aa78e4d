"""Forward-pass speed of the encoders, measured side by side in one run.

    python -m experiments.bench_encoders [--size 512] [--repeats 5] [--threads N]

For each encoder, the time of one forward pass of a ``1 × 3 × size × size`` image up to its AdaIN layer and
up to its deepest tap (fp32, no gradient, channels-last and contiguous, the faster kept), interleaved
round by round so that a busy machine slows every encoder alike; prints the median per encoder and the
ratio to MobileNetV2. Weights do not change the timing; random ones are used.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from adain.encoders import build_encoder

ENCODERS = ("vgg19_caffe", "mobilenet_v2")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    encoders = {name: build_encoder(name, weights=None) for name in ENCODERS}
    image = torch.rand(1, 3, args.size, args.size)
    layouts = {"contiguous": image, "channels_last": image.contiguous(memory_format=torch.channels_last)}
    times: dict[tuple[str, str, str], list[float]] = {}
    with torch.no_grad():
        for _ in range(args.repeats + 1):  # the first round warms up and is dropped
            for name, enc in encoders.items():
                for depth in ("adain", "deepest"):
                    layer = enc.adain_layer if depth == "adain" else enc.layer_names[-1]
                    for layout, x in layouts.items():
                        model = (
                            enc.to(memory_format=torch.channels_last) if layout == "channels_last" else enc
                        )
                        start = time.perf_counter()
                        model(x, layers=layer)
                        times.setdefault((name, depth, layout), []).append(time.perf_counter() - start)
    best = {
        (name, depth): min(statistics.median(times[(name, depth, lay)][1:]) for lay in layouts)
        for name in ENCODERS
        for depth in ("adain", "deepest")
    }
    print(f"one forward pass of a {args.size}² image, fp32, {args.threads} threads, median of {args.repeats}")
    for depth in ("adain", "deepest"):
        base = best[("mobilenet_v2", depth)]
        for name in ENCODERS:
            enc = encoders[name]
            layer = enc.adain_layer if depth == "adain" else enc.layer_names[-1]
            t = best[(name, depth)]
            print(f"  {name:14s} to {layer:8s} {t * 1000:8.1f} ms   {t / base:5.1f}× mobilenet_v2")


if __name__ == "__main__":
    main()
