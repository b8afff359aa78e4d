"""``adain stylize``: stylize image files or folders with an AdaIN model.

Examples::

    adain stylize --content photo.jpg --style starry.jpg --model adain.pth
    adain stylize --content photos/ --style styles/ --output out/            # every content × style pair
    adain stylize --content c.jpg --style a.jpg,b.jpg --style-weights 1,2    # interpolation: one output
    adain stylize --content c.jpg --style a.jpg,b.jpg --mask fg.png bg.png   # spatial control
    adain stylize --content c.jpg --style a.jpg --preserve-color luminance --alpha 0.8
    adain stylize ... --encoder vgg19_normalised --weights vgg_normalised.pth --decoder decoder.pth

Outputs are ``<content>_stylized_<style>.<ext>`` (styles of an interpolation joined with ``+``) in
``--output``. Each style (group) is encoded once and its statistics reused for every content (except with
``--preserve-color``, which recolours the style for each content). A failing pair is reported (file and
reason) and the others still run; non-images in a folder count as failures. Exit code: 0 if every pair was
written, 1 if any failed, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from adain.cli import EXIT_FAILURE, EXIT_OK, UsageError
from adain.decoders import decoder_names
from adain.devices import resolve_device
from adain.errors import AdainError
from adain.io import SkippedFileWarning, list_images, load_image, save_image
from adain.model import PRECISIONS, AdaINModel
from adain.modelfile import build_model, load_model, read_model_file
from adain.ops import StyleStats, rgb_to_luminance

__all__ = ["HELP", "add_arguments", "default_model_path", "run"]

HELP = "stylize content images with style images (files or folders)"


def default_model_path() -> Path:
    """Where the package's default model file is shipped: ``adain/models/default.pth``."""
    return Path(str(resources.files("adain"))) / "models" / "default.pth"


# ---- arguments -------------------------------------------------------------------------------------------


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0; got {value}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``adain stylize``."""
    io = p.add_argument_group("inputs and outputs")
    io.add_argument("--content", required=True, metavar="FILE|DIR", help="content image or folder of them")
    io.add_argument(
        "--style",
        required=True,
        metavar="FILE[,FILE...]|DIR",
        help="style image, comma-separated styles to interpolate (one output), or a folder (each style "
        "separately)",
    )
    io.add_argument("--output", default="output", metavar="DIR", help="output folder (default: %(default)s)")
    io.add_argument("--ext", default="jpg", help="output file type, e.g. jpg or png (default: %(default)s)")
    io.add_argument(
        "--content-size",
        type=_non_negative_int,
        default=512,
        metavar="N",
        help="resize contents so the shorter side is N; 0 keeps the original size (default: %(default)s)",
    )
    io.add_argument(
        "--style-size",
        type=_non_negative_int,
        default=512,
        metavar="N",
        help="resize styles so the shorter side is N; 0 keeps the original size (default: %(default)s)",
    )
    io.add_argument(
        "--crop", action="store_true", help="center-crop contents and styles to N×N after resizing"
    )

    ctl = p.add_argument_group("style controls")
    ctl.add_argument("--alpha", type=float, default=1.0, help="content–style trade-off in [0, 1] (default 1)")
    ctl.add_argument(
        "--style-weights",
        metavar="W[,W...]",
        help="interpolation weights, one per comma-separated style (normalised to sum 1; default equal)",
    )
    ctl.add_argument(
        "--mask",
        nargs="+",
        metavar="FILE",
        help="spatial control: one mask image per style (white = where that style goes; grey = soft); "
        "with two styles a single mask means [mask, 1 - mask]",
    )
    ctl.add_argument(
        "--preserve-color",
        nargs="?",
        const="coral",
        choices=("coral", "luminance"),
        default=None,
        help="keep the content's colours: 'coral' (default when given alone) recolours the style to the "
        "content's colour mean/covariance; 'luminance' stylises the luminance only",
    )

    model = p.add_argument_group("model (default: the model file shipped with the package)")
    model.add_argument("--model", metavar="FILE", help="model file (encoder name + decoder weights)")
    model.add_argument("--encoder", choices=decoder_names(), help="encoder for a raw --decoder state dict")
    model.add_argument("--weights", metavar="FILE", help="encoder weights (default: its pretrained weights)")
    model.add_argument(
        "--decoder", metavar="FILE", help="raw decoder state dict (e.g. the port's decoder.pth)"
    )
    model.add_argument(
        "--random-encoder",
        action="store_true",
        help="for tests/benchmarks only: random encoder weights (the images are meaningless)",
    )
    model.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:1, … or auto (cuda if available; default)"
    )
    model.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="network precision (autocast; default fp32)"
    )


# ---- option checks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What to stylize: contents, style groups (each one output), and the per-run controls."""

    contents: list[Path]
    style_groups: list[list[Path]]
    weights: list[float] | None
    masks: list[Path] | None
    skipped: list[str]  # "path: reason" of folder entries that are not images


def _listed(folder: Path) -> tuple[list[Path], list[str]]:
    """Images in ``folder`` and the files skipped as non-images (reported as failures)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedFileWarning)
        images = list_images(folder)
    skipped = [str(w.message) for w in caught if issubclass(w.category, SkippedFileWarning)]
    if not images and not skipped:
        raise UsageError(f"{folder}: the folder contains no images")
    return images, skipped


def _existing(text: str, what: str) -> Path:
    path = Path(text).expanduser()
    if not path.exists():
        raise UsageError(f"{what} {path} does not exist")
    return path


def _parse_floats(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{what} must be comma-separated numbers; got {text!r}") from None


def _job(args: argparse.Namespace) -> _Job:
    skipped: list[str] = []
    content = _existing(args.content, "--content")
    if content.is_dir():
        contents, skip = _listed(content)
        skipped += skip
    else:
        contents = [content]
    style_arg = str(args.style)
    if "," in style_arg:
        groups = [[_existing(s.strip(), "--style") for s in style_arg.split(",") if s.strip()]]
        if any(p.is_dir() for p in groups[0]):
            raise UsageError("--style with commas takes image files to interpolate, not folders")
    else:
        style = _existing(style_arg, "--style")
        if style.is_dir():
            styles, skip = _listed(style)
            skipped += skip
            groups = [[s] for s in styles]
        else:
            groups = [[style]]
    k = len(groups[0])
    folder_of_styles = len(groups) > 1 or (k == 1 and Path(style_arg).expanduser().is_dir())
    weights = None
    if args.style_weights is not None:
        weights = _parse_floats(args.style_weights, "--style-weights")
        if folder_of_styles or len(weights) != k:
            raise UsageError(
                f"--style-weights needs one weight per comma-separated style ({k}); got {weights}"
            )
    masks = None
    if args.mask:
        if folder_of_styles:
            raise UsageError("--mask needs comma-separated style files (one mask per style), not a folder")
        masks = [_existing(m, "--mask") for m in args.mask]
        if len(masks) != k and not (len(masks) == 1 and k == 2):
            raise UsageError(f"--mask needs one mask per style: got {len(masks)} mask(s) for {k} style(s)")
    if not 0.0 <= args.alpha <= 1.0:
        raise UsageError(f"--alpha must lie in [0, 1]; got {args.alpha}")
    ext = "." + str(args.ext).lower().lstrip(".")
    if Image.registered_extensions().get(ext) not in Image.SAVE:
        raise UsageError(f"--ext {args.ext}: Pillow cannot write {ext} files (use jpg or png)")
    if args.crop and (args.content_size == 0 or args.style_size == 0):
        raise UsageError("--crop needs --content-size and --style-size > 0 (the crop is N×N)")
    return _Job(contents, groups, weights, masks, skipped)


def _device(text: str) -> torch.device:
    try:
        return resolve_device(text)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None


def _model(args: argparse.Namespace, device: torch.device) -> AdaINModel:
    """Build the model from --model / --encoder --decoder / the default model file."""
    pretrained = not args.random_encoder
    if args.random_encoder and args.weights:
        raise UsageError("--random-encoder and --weights contradict each other; pick one")
    common = {"encoder_weights": args.weights, "pretrained": pretrained, "precision": args.precision}
    if args.model and args.decoder:
        raise UsageError("give either --model FILE or --encoder NAME --decoder FILE, not both")
    if args.decoder:
        if not args.encoder:
            raise UsageError("--decoder FILE (a raw state dict) needs --encoder NAME")
        return build_model(args.encoder, args.decoder, device=device, **common)
    if args.encoder and not args.model:
        raise UsageError("--encoder NAME needs --decoder FILE (or use --model FILE)")
    path = args.model
    if path is None:
        path = default_model_path()
        if not path.is_file():
            raise UsageError(
                f"no model given, and the package's default model {path} is missing (reinstall "
                "adain-mmd to restore it). Pass "
                "--model FILE (a model file), or --encoder NAME [--weights FILE] --decoder FILE (a raw "
                "decoder state dict such as the PyTorch AdaIN port's decoder.pth with --encoder "
                "vgg19_normalised --weights vgg_normalised.pth)"
            )
    if args.encoder:
        read_model_file(path, encoder_name=args.encoder)  # CheckpointError on mismatch
    return load_model(path, device=device, **common)


# ---- running ---------------------------------------------------------------------------------------------


def _center_crop(image: Tensor, size: int) -> Tensor:
    """``[3, H, W]`` → ``[3, min(H, size), min(W, size)]`` from the centre."""
    h, w = image.shape[-2:]
    th, tw = min(h, size), min(w, size)
    top, left = (h - th) // 2, (w - tw) // 2
    return image[..., top : top + th, left : left + tw]


class _Loader:
    """Loads images with the run's size/crop options and caches style images and statistics."""

    def __init__(self, args: argparse.Namespace, model: AdaINModel) -> None:
        self.args, self.model = args, model
        self._styles: dict[Path, Tensor | Exception] = {}
        self._stats: dict[Path, StyleStats | Exception] = {}
        self.noted: set[Path] = set()  # masks whose size mismatch was reported

    def image(self, path: Path, size: int) -> Tensor:
        enc = self.model.encoder
        img = load_image(path, size=size or None, encoder=enc, layers=enc.adain_layer)
        return _center_crop(img, size) if self.args.crop else img

    def content(self, path: Path) -> Tensor:
        return self.image(path, self.args.content_size)

    def mask(self, path: Path) -> Tensor:
        """``[H, W]`` in [0, 1]: the mask's luminance, resized/cropped as the content."""
        img = load_image(path, size=self.args.content_size or None)
        if self.args.crop:
            img = _center_crop(img, self.args.content_size)
        return rgb_to_luminance(img)[0].clamp(0.0, 1.0)

    def _cached(self, cache: dict, path: Path, make: Callable[[], Any]) -> Any:
        if path not in cache:
            try:
                cache[path] = make()
            except (AdainError, ValueError) as e:
                cache[path] = e
        value = cache[path]
        if isinstance(value, Exception):
            raise value
        return value

    def style(self, path: Path) -> Tensor:
        """The style image (loaded once)."""
        return self._cached(self._styles, path, lambda: self.image(path, self.args.style_size))

    def style_stats(self, path: Path) -> StyleStats:
        """The style's statistics (encoded once)."""
        return self._cached(self._stats, path, lambda: self.model.encode_style(self.style(path)))


def _output_path(args: argparse.Namespace, content: Path, styles: Sequence[Path]) -> Path:
    ext = str(args.ext).lstrip(".")
    return Path(args.output) / f"{content.stem}_stylized_{'+'.join(s.stem for s in styles)}.{ext}"


def _stylize_pair(
    args: argparse.Namespace,
    job: _Job,
    loader: _Loader,
    content_img: Tensor,
    content: Path,
    group: list[Path],
) -> Path:
    """Stylize one content image (already loaded) with one style group and save the result."""
    if args.preserve_color:
        styles: list[Tensor | StyleStats] = [loader.style(p) for p in group]
    else:
        styles = [loader.style_stats(p) for p in group]
    masks = None
    if job.masks is not None:
        masks = [loader.mask(m) for m in job.masks]
        if len(masks) == 1 and len(group) == 2:
            masks = [masks[0], 1.0 - masks[0]]
        for m, path in zip(masks, job.masks, strict=False):
            if m.shape != content_img.shape[-2:] and path not in loader.noted:
                loader.noted.add(path)
                tqdm.write(
                    f"note: mask {path} is {m.shape[-1]}×{m.shape[-2]} after resizing, the content "
                    f"{content} is {content_img.shape[-1]}×{content_img.shape[-2]}; the mask is stretched "
                    "to the content",
                    file=sys.stderr,
                )
    out = loader.model.stylize(
        content_img,
        styles,
        alpha=args.alpha,
        weights=job.weights,
        masks=masks,
        preserve_color=args.preserve_color or False,
    )
    return save_image(out, _output_path(args, content, group))


def _report(failures: list[str], bar: tqdm | None, message: str) -> None:
    failures.append(message)
    (bar.write if bar is not None else print)(f"FAILED {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run ``adain stylize``; returns the exit code (usage problems raise :class:`UsageError`)."""
    job = _job(args)
    device = _device(args.device)
    try:
        model = _model(args, device)
    except (AdainError, ValueError) as e:
        print(f"adain stylize: error: cannot load the model: {e}", file=sys.stderr)
        return EXIT_FAILURE
    loader = _Loader(args, model)
    failures: list[str] = []
    for reason in job.skipped:
        _report(failures, None, reason)
    total = len(job.contents) * len(job.style_groups)
    written = 0
    with tqdm(total=total, desc="stylize", unit="image", disable=None, file=sys.stderr) as bar:
        for content in job.contents:
            try:
                content_img = loader.content(content)
            except (AdainError, ValueError) as e:
                _report(failures, bar, f"{content}: {e}")
                bar.update(len(job.style_groups))
                continue
            for group in job.style_groups:
                pair = f"{content} × {','.join(map(str, group))}"
                try:
                    path = _stylize_pair(args, job, loader, content_img, content, group)
                except (AdainError, ValueError) as e:
                    _report(failures, bar, f"{pair}: {e}")
                except Exception as e:  # unexpected: keep going, but show where it came from
                    traceback.print_exc()
                    _report(failures, bar, f"{pair}: unexpected {type(e).__name__}: {e}")
                else:
                    written += 1
                    bar.write(str(path), file=sys.stdout)
                bar.update(1)
    summary = f"{written} of {total} image(s) written to {args.output}"
    if failures:
        summary += f"; {len(failures)} failure(s)"
    print(summary, file=sys.stderr)
    return EXIT_FAILURE if failures else EXIT_OK
