"""``adain stylize``: stylize image files or folders with an AdaIN model.

Examples::

    adain stylize --content photo.jpg --style starry.jpg --model adain.pth
    adain stylize --content photos/ --style styles/ --output out/            # every content × style pair
    adain stylize --content c.jpg --style a.jpg --style b.jpg --style-weights 1,2   # interpolation
    adain stylize --content c.jpg --style a.jpg b.jpg --mask fg.png bg.png   # spatial control
    adain stylize --content c.jpg --style a.jpg --preserve-color luminance --alpha 0.8
    adain stylize ... --encoder vgg19_normalised --encoder-weights vgg_normalised.pth --decoder decoder.pth

Outputs are ``<content>_stylized_<style>.<ext>`` (styles of an interpolation joined with ``+``) in
``--output``, under the content's sub-folder of ``--content``; names that would clash are made unique
(:mod:`adain.outputs`). Everything that can be checked before the work is: the output folder, existing
outputs (refused unless ``--skip-existing`` or ``--overwrite``), the style weights and the memory each
content needs. Each style (group) is encoded once and its statistics reused for every content (except with
``--preserve-color``, which recolours the style for each content). Images are written atomically. A
failing pair is reported (file and reason) and the others still run; a full or read-only disk stops the
run. Exit code: 0 if every pair was written (or skipped as existing), 1 if any failed or a folder held
files that are not images, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import errno
import sys
import traceback
import warnings
from collections.abc import Callable
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
from adain.devices import PRECISION_CHOICES, PrecisionWarning, resolve_device, resolve_precision
from adain.encoders import DEFAULT_WEIGHTS
from adain.errors import AdainError, OutputError
from adain.io import DEFAULT_MAX_PIXELS, SkippedFileWarning, list_images, load_image, save_image, target_size
from adain.memory import available_memory, estimate_stylize_bytes, largest_shorter_side
from adain.model import AdaINModel
from adain.modelfile import build_model, load_model, read_model_file
from adain.ops import StyleStats, normalize_style_weights, rgb_to_luminance
from adain.outputs import check_output_folder, inside, plan_outputs
from adain.torchfiles import listing

__all__ = ["HELP", "add_arguments", "default_model_path", "run"]

HELP = "stylize content images with style images (files or folders)"

#: Write errors after which every further write would fail too: the run stops.
_FATAL_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})

#: Contents above this estimated peak memory get a note (time and memory) before the run.
_LARGE_BYTES = 2 * 10**9


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
        action="extend",
        nargs="+",
        metavar="FILE|DIR",
        help="a style image or a folder of them (each style separately); several style files (repeat "
        "--style, or list them after one --style) are interpolated into one output",
    )
    io.add_argument("--output", default="output", metavar="DIR", help="output folder (default: %(default)s)")
    io.add_argument("--ext", default="jpg", help="output file type, e.g. jpg or png (default: %(default)s)")
    existing = io.add_mutually_exclusive_group()
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep outputs that already exist and run only the missing pairs",
    )
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
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
    io.add_argument(
        "--max-pixels",
        type=_non_negative_int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help="refuse image files with more pixels than N, a guard against decompression bombs; 0 turns "
        "it off (default: %(default)s)",
    )

    ctl = p.add_argument_group("style controls")
    ctl.add_argument("--alpha", type=float, default=1.0, help="content–style trade-off in [0, 1] (default 1)")
    ctl.add_argument(
        "--style-weights",
        metavar="W[,W...]",
        help="interpolation weights, one per --style file, comma-separated (normalised to sum 1; "
        "default equal)",
    )
    ctl.add_argument(
        "--mask",
        action="extend",
        nargs="+",
        metavar="FILE",
        help="spatial control: one mask image per --style file, in the same order (white = where that "
        "style goes; grey = soft); with two styles a single mask means [mask, 1 - mask]",
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

    ctl.add_argument(
        "--context-padding",
        type=int,
        default=32,
        metavar="PX",
        help="reflect this many pixels of the content outwards before encoding and cut them from the "
        "output, so the frame that the encoder's zero padding makes the decoder paint falls outside the "
        "picture (default: %(default)s; 0: the paper's pipeline)",
    )
    model = p.add_argument_group("model (default: the model file shipped with the package)")
    model.add_argument("--model", metavar="FILE", help="model file (encoder name + decoder weights)")
    model.add_argument("--encoder", choices=decoder_names(), help="encoder for a raw --decoder state dict")
    model.add_argument(
        "--encoder-weights", metavar="FILE", help="encoder weights file (default: its pretrained weights)"
    )
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
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help="network precision (autocast): auto (default) is bf16 where the GPU (CUDA ≥ 8.0) or CPU "
        "(AMX) computes it fast, fp32 elsewhere",
    )


# ---- option checks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What to stylize: pairs still to run with their output paths, and the per-run controls."""

    pending: dict[Path, list[tuple[list[Path], Path]]]  # content → [(style group, output path)]
    total: int  # all pairs, written or skipped
    existing: int  # pairs skipped because their output exists (--skip-existing)
    weights: list[float] | None
    masks: list[Path] | None
    skipped: list[str]  # "skipping PATH: not an image (…)" of folder entries


def _listed(folder: Path, output: Path) -> tuple[list[Path], list[str]]:
    """Images in ``folder`` (never those inside ``output``) and the messages of skipped non-images."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedFileWarning)
        # an output folder inside the input folder is left out; one that *is* it is refused by _plan
        nested = inside(output, folder) and output.resolve() != folder.resolve()
        images = list_images(folder, exclude=[output] if nested else [])
    skipped = [str(w.message) for w in caught if issubclass(w.category, SkippedFileWarning)]
    if not images and not skipped:
        raise UsageError(f"{folder}: the folder contains no images")
    return images, skipped


def _existing(text: str, what: str) -> Path:
    path = Path(text).expanduser()
    if not path.exists():
        hint = ""
        if what == "--style" and "," in text:
            hint = (
                " (a comma does not separate styles: give several style files as --style a.jpg b.jpg or "
                "--style a.jpg --style b.jpg)"
            )
        raise UsageError(f"{what} {text} does not exist{hint}")
    return path


def _parse_floats(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{what} must be comma-separated numbers; got {text!r}") from None


def _styles(values: list[str], output: Path) -> tuple[list[list[Path]], Path | None, list[str]]:
    """Style groups, the style folder (if one was given) and skipped files, from the --style values."""
    paths = [_existing(v, "--style") for v in values]
    if len(paths) == 1 and paths[0].is_dir():
        styles, skipped = _listed(paths[0], output)
        return [[s] for s in styles], paths[0], skipped
    folders = [str(p) for p in paths if p.is_dir()]
    if folders:
        raise UsageError(
            f"several --style values are interpolated into one output and must be image files; "
            f"{', '.join(folders)} is a folder"
        )
    return [paths], None, []


def _weights(args: argparse.Namespace, k: int, folder_of_styles: bool) -> list[float] | None:
    """The --style-weights, checked once: one per style, finite, not summing to 0 (≥ 0 with masks)."""
    if args.style_weights is None:
        return None
    weights = _parse_floats(args.style_weights, "--style-weights")
    if folder_of_styles or len(weights) != k:
        raise UsageError(f"--style-weights needs one weight per --style file ({k}); got {weights}")
    try:
        normalize_style_weights(weights, k)
    except ValueError as e:
        raise UsageError(f"--style-weights {args.style_weights}: {e}") from None
    if args.mask and any(w < 0 for w in weights):
        raise UsageError(f"--style-weights must be non-negative together with --mask; got {weights}")
    return weights


def _plan(
    args: argparse.Namespace,
    contents: list[Path],
    content_root: Path | None,
    groups: list[list[Path]],
    style_root: Path | None,
) -> tuple[dict[Path, list[tuple[list[Path], Path]]], int]:
    """Output paths of all pairs, after the existing-output rule; returns (pending pairs, skipped count)."""
    output = Path(args.output).expanduser()
    try:
        plan = plan_outputs(output, contents, content_root, groups, style_root, str(args.ext))
    except OutputError as e:
        raise UsageError(str(e)) from None
    for root, what in ((content_root, "--content"), (style_root, "--style")):
        if root is None or (inside(output, root) and output.resolve() != root.resolve()):
            continue  # no folder, or the output folder is nested in it and left out of its listing
        if any(inside(p, root) for p in plan.values()):
            raise UsageError(
                f"--output {output} would put results inside the {what} folder {root}, where a later run "
                f"would read them as inputs; choose another folder (e.g. {root / 'stylized'})"
            )
    inputs = {p.resolve() for p in contents} | {p.resolve() for g in groups for p in g}
    inputs |= {Path(m).expanduser().resolve() for m in args.mask or ()}
    clobbered = [str(p) for p in plan.values() if p.resolve() in inputs]
    if clobbered:
        raise UsageError(
            f"an output would replace an input file: {listing(clobbered)}; choose another --output"
        )
    existing = [p for p in plan.values() if p.exists()]
    if existing and not (args.skip_existing or args.overwrite):
        raise UsageError(
            f"{len(existing)} output file(s) already exist: {listing([str(p) for p in existing])}; pass "
            "--skip-existing to keep them and run the missing pairs only, or --overwrite to replace them"
        )
    skip = set(existing) if args.skip_existing else set()
    pending: dict[Path, list[tuple[list[Path], Path]]] = {}
    for (content, group), path in plan.items():
        if path not in skip:
            pending.setdefault(content, []).append((list(group), path))
    return pending, len(skip)


def _job(args: argparse.Namespace) -> _Job:
    output = Path(args.output).expanduser()
    try:
        check_output_folder(output)
    except OutputError as e:
        raise UsageError(str(e)) from None
    skipped: list[str] = []
    content = _existing(args.content, "--content")
    content_root = content if content.is_dir() else None
    if content_root is not None:
        contents, skip = _listed(content, output)
        skipped += skip
    else:
        contents = [content]
    groups, style_root, skip = _styles(list(args.style), output)
    skipped += skip
    k = len(groups[0]) if groups else 0
    folder_of_styles = style_root is not None
    weights = _weights(args, k, folder_of_styles)
    masks = None
    if args.mask:
        if folder_of_styles:
            raise UsageError("--mask needs --style image files (one mask per style), not a folder")
        masks = [_existing(m, "--mask") for m in args.mask]
        if len(masks) != k and not (len(masks) == 1 and k == 2):
            raise UsageError(f"--mask needs one mask per style: got {len(masks)} mask(s) for {k} style(s)")
    if not 0.0 <= args.alpha <= 1.0:
        raise UsageError(f"--alpha must lie in [0, 1]; got {args.alpha}")
    if args.context_padding < 0:
        raise UsageError(f"--context-padding must be 0 or more pixels; got {args.context_padding}")
    ext = "." + str(args.ext).lower().lstrip(".")
    if Image.registered_extensions().get(ext) not in Image.SAVE:
        raise UsageError(f"--ext {args.ext}: Pillow cannot write {ext} files (use jpg or png)")
    if args.crop and (args.content_size == 0 or args.style_size == 0):
        raise UsageError("--crop needs --content-size and --style-size > 0 (the crop is N×N)")
    pending, existing = _plan(args, contents, content_root, groups, style_root)
    total = len(contents) * len(groups)
    return _Job(pending, total, existing, weights, masks, skipped)


def _device(text: str) -> torch.device:
    try:
        return resolve_device(text)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None


def _precision(requested: str, device: torch.device) -> str:
    """The concrete precision; a warning (bf16 emulated on this CPU) is printed as one line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PrecisionWarning)
        precision = resolve_precision(requested, device)
    for w in caught:
        print(f"adain stylize: warning: {w.message}", file=sys.stderr)
    return precision


def _content_size(args: argparse.Namespace, path: Path) -> tuple[int, int] | None:
    """The (H, W) a content will have after resizing/cropping, from its header; ``None`` if unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except Exception:  # unreadable: load_image reports it in the run
        return None
    n = args.content_size
    h, w = target_size(h, w, n or None)
    return (min(h, n), min(w, n)) if args.crop else (h, w)


def _check_memory(args: argparse.Namespace, job: _Job, model: AdaINModel, device: torch.device) -> None:
    """Refuse contents whose estimated peak memory exceeds what is available; note the large ones."""
    available = available_memory(device)
    name = model.encoder_name
    too_big, large = [], []
    advice: int | None = None
    for content in job.pending:
        size = _content_size(args, content)
        if size is None:
            continue
        need = estimate_stylize_bytes(name, *size, model.precision)
        if available is not None and need > available:
            too_big.append(f"{content} ({size[1]}×{size[0]}, about {need / 1e9:.1f} GB)")
            side = largest_shorter_side(name, *size, available, model.precision)
            advice = side if advice is None else min(advice, side)
        elif need > _LARGE_BYTES:
            large.append((content, size, need))
    if too_big:
        assert available is not None  # too_big is only filled when the available memory is known
        raise UsageError(
            f"not enough memory: {listing(too_big)} would need more than the {available / 1e9:.1f} GB "
            f"available on {device}; use --content-size {advice} or smaller (the largest shorter side "
            "that fits)"
        )
    for content, (h, w), need in large:
        free = f" of {available / 1e9:.1f} GB available" if available is not None else ""
        print(
            f"note: {content} is {w}×{h} = {h * w / 1e6:.1f} megapixels: about {need / 1e9:.1f} GB{free}; "
            "this can take minutes (--content-size N makes it smaller)",
            file=sys.stderr,
        )


def _model(args: argparse.Namespace, device: torch.device, precision: str) -> AdaINModel:
    """Build the model from --model / --encoder --decoder / the default model file."""
    if args.random_encoder and args.encoder_weights:
        raise UsageError("--random-encoder and --encoder-weights contradict each other; pick one")
    weights = None if args.random_encoder else (args.encoder_weights or DEFAULT_WEIGHTS)
    common: dict[str, Any] = {"encoder_weights": weights, "precision": precision}
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
                "--model FILE (a model file), or --encoder NAME [--encoder-weights FILE] --decoder FILE "
                "(a raw "
                "decoder state dict such as the PyTorch AdaIN port's decoder.pth with --encoder "
                "vgg19_normalised --encoder-weights vgg_normalised.pth)"
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
        self.max_pixels: int | None = args.max_pixels or None
        self._styles: dict[Path, Tensor | Exception] = {}
        self._stats: dict[Path, StyleStats | Exception] = {}
        self.noted: set[Path] = set()  # masks whose size mismatch was reported

    def image(self, path: Path, size: int) -> Tensor:
        enc = self.model.encoder
        img = load_image(
            path, size=size or None, max_pixels=self.max_pixels, encoder=enc, layers=enc.adain_layer
        )
        return _center_crop(img, size) if self.args.crop else img

    def content(self, path: Path) -> Tensor:
        return self.image(path, self.args.content_size)

    def mask(self, path: Path) -> Tensor:
        """``[H, W]`` in [0, 1]: the mask's luminance, resized/cropped as the content."""
        img = load_image(path, size=self.args.content_size or None, max_pixels=self.max_pixels)
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


def _stylize_pair(
    args: argparse.Namespace,
    job: _Job,
    loader: _Loader,
    content_img: Tensor,
    content: Path,
    group: list[Path],
    path: Path,
) -> Path:
    """Stylize one content image (already loaded) with one style group and save the result to ``path``."""
    if args.preserve_color:
        styles: list[Tensor | StyleStats] = [loader.style(p) for p in group]
    else:
        styles = [loader.style_stats(p) for p in group]
    masks = None
    if job.masks is not None:
        masks = [loader.mask(m) for m in job.masks]
        if len(masks) == 1 and len(group) == 2:
            masks = [masks[0], 1.0 - masks[0]]
        for m, mask_path in zip(masks, job.masks, strict=False):
            if m.shape != content_img.shape[-2:] and mask_path not in loader.noted:
                loader.noted.add(mask_path)
                tqdm.write(
                    f"note: mask {mask_path} is {m.shape[-1]}×{m.shape[-2]} after resizing, the content "
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
        context_padding=args.context_padding,
    )
    return save_image(out, path)


def _named(path: Path, error: Exception) -> str:
    """The error's message, prefixed with ``path`` unless it names it already."""
    message = str(error)
    return message if str(path) in message else f"{path}: {message}"


def _fatal_write(error: Exception) -> bool:
    cause = error.__cause__
    return isinstance(cause, OSError) and cause.errno in _FATAL_WRITE_ERRNOS


@dataclass
class _Tally:
    """Counts of the run; written + failed + existing + not_run = total pairs."""

    total: int
    existing: int
    written: int = 0
    failed: int = 0

    def summary(self, output: str, skipped_files: int) -> str:
        not_run = self.total - self.existing - self.written - self.failed
        parts = [f"{self.written} of {self.total} image(s) written to {output}"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.existing:
            parts.append(f"{self.existing} skipped (output exists)")
        if not_run:
            parts.append(f"{not_run} not run")
        text = ", ".join(parts)
        if skipped_files:
            text += f"; {skipped_files} file(s) skipped (not images)"
        return text


def run(args: argparse.Namespace) -> int:
    """Run ``adain stylize``; returns the exit code (usage problems raise :class:`UsageError`)."""
    job = _job(args)
    device = _device(args.device)
    precision = _precision(args.precision, device)
    try:
        model = _model(args, device, precision)
    except (AdainError, ValueError) as e:
        print(f"adain stylize: error: cannot load the model: {e}", file=sys.stderr)
        return EXIT_FAILURE
    _check_memory(args, job, model, device)
    loader = _Loader(args, model)
    for message in job.skipped:
        print(message, file=sys.stderr)
    tally = _Tally(job.total, job.existing)
    todo = sum(len(pairs) for pairs in job.pending.values())
    stop: str | None = None
    with tqdm(total=todo, desc="stylize", unit="image", disable=None, file=sys.stderr) as bar:

        def fail(message: str, pairs: int = 1) -> None:
            tally.failed += pairs
            bar.write(f"FAILED {message}", file=sys.stderr)
            bar.update(pairs)

        for content, pairs in job.pending.items():
            try:
                content_img = loader.content(content)
            except (AdainError, ValueError) as e:
                fail(_named(content, e), len(pairs))
                continue
            for group, path in pairs:
                pair = f"{content} × {' + '.join(map(str, group))}"
                try:
                    written = _stylize_pair(args, job, loader, content_img, content, group, path)
                except (AdainError, ValueError) as e:
                    fail(f"{pair}: {e}")
                    if _fatal_write(e):
                        stop = str(e)
                        break
                except Exception as e:  # unexpected: keep going, but show where it came from
                    traceback.print_exc()
                    fail(f"{pair}: unexpected {type(e).__name__}: {e}")
                else:
                    tally.written += 1
                    bar.write(str(written), file=sys.stdout)
                    bar.update(1)
            if stop is not None:
                break
    if stop is not None:
        print(f"adain stylize: error: stopped, no further output can be written ({stop})", file=sys.stderr)
    print(tally.summary(args.output, len(job.skipped)), file=sys.stderr)
    return EXIT_FAILURE if tally.failed or job.skipped or stop else EXIT_OK
