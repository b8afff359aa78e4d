"""Average the decoder weights of several model files or checkpoints of one run into a model file.

    python -m experiments.average_decoders A.pth B.pth [...] --output averaged.pth [--overwrite]

A uniform average of iterates (Polyak averaging; what stochastic weight averaging does with a few
checkpoints of one trajectory) smooths out the step-to-step noise of the last iterates. Every input must
hold a decoder for the same encoder with the same parameter names and shapes; the output is a model file
for ``adain stylize --model`` and ``experiments.default_model report --model`` whose config records the
inputs (paths and iterations). A path given k times has weight k. It refuses to replace an existing
file without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

__all__ = ["average_decoders", "main"]


def average_decoders(paths: list[Path]) -> tuple[str, dict[str, torch.Tensor], list[dict[str, object]]]:
    """``(encoder name, averaged decoder state, [{"path", "iteration"} per input])``.

    Raises:
        CheckpointError: an unreadable file, or decoders that do not match (naming the file).
    """
    from adain.errors import CheckpointError
    from adain.modelfile import read_model_file
    from adain.torchfiles import state_dict_problems

    if len(paths) < 2:
        raise ValueError(f"averaging needs at least two model files, got {len(paths)}")
    first = read_model_file(paths[0])
    total = {k: v.detach().double().clone() for k, v in first.decoder_state.items()}
    sources: list[dict[str, object]] = []
    for index, path in enumerate(paths):
        model = first if index == 0 else read_model_file(path)  # a repeated path counts again (a weight)
        if model.encoder_name != first.encoder_name:
            raise CheckpointError(
                f"{path}: a decoder for {model.encoder_name}, not {first.encoder_name} like {paths[0]}"
            )
        if model is not first:
            problems = state_dict_problems(first.decoder_state, model.decoder_state)
            if problems:
                raise CheckpointError(f"{path}: the decoder does not match {paths[0]}: {'; '.join(problems)}")
            for key, value in model.decoder_state.items():
                total[key] += value.double()
        sources.append({"path": str(path), "iteration": model.config.get("trained_iterations")})
    dtypes = {k: v.dtype for k, v in first.decoder_state.items()}
    averaged = {k: (v / len(paths)).to(dtypes[k]) for k, v in total.items()}
    return first.encoder_name, averaged, sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="+", type=Path, help="model files or training checkpoints")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)

    from adain.decoders import build_decoder
    from adain.errors import AdainError
    from adain.modelfile import save_model_file

    if args.output.exists() and not args.overwrite:
        print(
            f"average_decoders: error: {args.output} exists; pass --overwrite to replace it", file=sys.stderr
        )
        return 1
    try:
        encoder_name, state, sources = average_decoders(args.models)
    except (AdainError, ValueError) as e:
        print(f"average_decoders: error: {e}", file=sys.stderr)
        return 1
    decoder = build_decoder(encoder_name)
    decoder.load_state_dict(state)
    save_model_file(args.output, decoder, encoder_name=encoder_name, config={"averaged_from": sources})
    print(f"wrote {args.output}: the mean of {len(sources)} decoders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
