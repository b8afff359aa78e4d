"""Image files in and out: the one place the project reads and writes images.

* :func:`load_image` → ``[3, H, W]`` float32 RGB in [0, 1]: EXIF orientation applied; modes 1, L, LA, P
  (with or without transparency), RGB, RGBA, CMYK, YCbCr, I;16 / I;16B, I and F handled. **Transparency is
  composited onto white** (``rgb * alpha + (1 - alpha)``), as a viewer shows the image on a white page; the
  alpha channel is not returned. 16-bit grayscale (I;16, 16-bit grayscale PNG) keeps full precision and is
  scaled by 1/65535. Pillow reduces 16-bit *colour* PNGs to 8 bits per channel when decoding; those come
  out on the right scale at 8-bit precision. CMYK uses Pillow's plain conversion (no ICC colour
  management). Animated files give their first frame.
* :func:`save_image` writes PNG/JPEG/… from a tensor (clamped to [0, 1]) atomically, creating parent folders.
* :func:`list_images` lists the image files under a folder, recursively, warning once per skipped file.
* :func:`check_image_size` says whether an image is large enough for an encoder's layers.

Every error is an :class:`~adain.errors.ImageError` (or :class:`~adain.errors.ImageTooSmallError`) whose
message names the file and the problem. Nothing here touches Pillow's global settings (truncated images
are an error, never silently padded).
"""

from __future__ import annotations

import os
import warnings
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from adain.atomic import atomic_write
from adain.errors import ImageError, ImageTooSmallError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "SkippedFileWarning",
    "check_image_size",
    "image_to_tensor",
    "list_images",
    "load_image",
    "resize_image",
    "save_image",
    "target_size",
]

#: Default limit on the pixel count of an image (source or resized), 64 megapixels.
DEFAULT_MAX_PIXELS = 8192 * 8192

#: File name suffixes :func:`list_images` considers (lower case).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm"}
)

_INTERPOLATIONS = ("bilinear", "bicubic")
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, IndexError, zlib.error)

PathLike = str | os.PathLike[str]


class SkippedFileWarning(UserWarning):
    """:func:`list_images` skipped a file that is not a readable image."""


class SupportsMinInputSize(Protocol):
    """What :func:`check_image_size` needs from an encoder (see :class:`adain.encoders.FeatureEncoder`)."""

    name: str
    layer_names: tuple[str, ...]

    def min_input_size(self, layer: str | None = None) -> int: ...


# ---- pixels → tensor -------------------------------------------------------------------------------------


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``[H, W, C]`` and ``[H, W]`` floats in [0, 1] → ``[H, W, C]`` composited over white."""
    a = alpha[..., None]
    return rgb * a + (1.0 - a)


def image_to_tensor(image: Image.Image) -> Tensor:
    """A decoded Pillow image → ``[3, H, W]`` float32 RGB in [0, 1] (see the module doc for each mode).

    Raises:
        ValueError: a mode that cannot be converted, or integer ("I") pixels outside 0 … 65535.
    """
    mode = image.mode
    if mode.startswith("I;16"):
        gray = np.asarray(image).astype(np.float32) / 65535.0
        rgb = np.repeat(gray[..., None], 3, axis=2)
    elif mode == "I":
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(
                f"32-bit integer pixels outside 0 … 65535 (range {values.min()} … {values.max()})"
            )
        rgb = np.repeat((values.astype(np.float32) / 65535.0)[..., None], 3, axis=2)
    elif mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
        rgb = np.repeat(np.clip(values, 0.0, 1.0)[..., None], 3, axis=2)  # float pixels taken as [0, 1]
    elif mode in ("LA", "La") or (mode == "L" and "transparency" in image.info):
        la = np.asarray(image.convert("LA")).astype(np.float32) / 255.0
        rgb = _composite_on_white(np.repeat(la[..., :1], 3, axis=2), la[..., 1])
    elif mode in ("RGBA", "RGBa", "PA") or (mode in ("P", "RGB") and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA")).astype(np.float32) / 255.0
        rgb = _composite_on_white(rgba[..., :3], rgba[..., 3])
    elif mode in ("1", "L"):
        gray = np.asarray(image.convert("L")).astype(np.float32) / 255.0
        rgb = np.repeat(gray[..., None], 3, axis=2)
    else:  # RGB, P, CMYK, YCbCr, LAB, HSV, RGBX …
        rgb = np.asarray(image.convert("RGB")).astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1).contiguous()


# ---- sizes -----------------------------------------------------------------------------------------------


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{what} must be a positive integer; got {value!r}")
    return int(value)


def target_size(
    height: int,
    width: int,
    size: int | Sequence[int] | None = None,
    *,
    longer_side: int | None = None,
) -> tuple[int, int]:
    """The ``(H, W)`` an image of ``height × width`` is resized to.

    Args:
        size: an int sets the shorter side (aspect ratio kept); ``(H, W)`` sets the exact size.
        longer_side: sets the longer side instead (aspect ratio kept).

    Raises:
        ValueError: both ``size`` and ``longer_side``, or values that are not positive integers.
    """
    if size is not None and longer_side is not None:
        raise ValueError("give either size (shorter side or exact (H, W)) or longer_side, not both")
    if size is None and longer_side is None:
        return height, width
    if size is not None and not isinstance(size, int | np.integer):
        if not isinstance(size, Sequence) or isinstance(size, str) or len(size) != 2:
            raise ValueError(f"size must be an int (shorter side) or a pair (H, W); got {size!r}")
        return _positive_int(size[0], "size[0]"), _positive_int(size[1], "size[1]")
    side = _positive_int(size, "size") if size is not None else _positive_int(longer_side, "longer_side")
    reference = min(height, width) if size is not None else max(height, width)
    scale = side / reference
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_image(
    image: Tensor,
    size: int | Sequence[int] | None = None,
    *,
    longer_side: int | None = None,
    interpolation: str = "bicubic",
) -> Tensor:
    """Resize ``[3, H, W]`` or ``[B, 3, H, W]`` images with antialiasing; output clamped to [0, 1].

    ``size`` / ``longer_side`` as in :func:`target_size`; ``interpolation`` is "bicubic" or "bilinear".
    """
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}; got {interpolation!r}")
    h, w = target_size(image.shape[-2], image.shape[-1], size, longer_side=longer_side)
    if (h, w) == tuple(image.shape[-2:]):
        return image
    batch = image if image.dim() == 4 else image.unsqueeze(0)
    out = F.interpolate(batch, size=(h, w), mode=interpolation, align_corners=False, antialias=True)
    out = out.clamp_(0.0, 1.0)
    return out if image.dim() == 4 else out.squeeze(0)


def check_image_size(
    image: Tensor | tuple[int, int],
    encoder: SupportsMinInputSize,
    layers: str | Iterable[str] | None = None,
    *,
    path: PathLike | None = None,
) -> None:
    """Raise :class:`ImageTooSmallError` if ``image`` is too small for ``encoder``'s requested layers.

    Args:
        image: a tensor ``[..., H, W]`` or its ``(H, W)``.
        encoder: any object with ``name``, ``layer_names`` and ``min_input_size(layer)``.
        layers: layer name(s); ``None`` means all of the encoder's layers (i.e. its deepest).
        path: the file the image came from, named in the message.
    """
    h, w = (int(image.shape[-2]), int(image.shape[-1])) if isinstance(image, Tensor) else image
    names = (
        list(encoder.layer_names) if layers is None else [layers] if isinstance(layers, str) else list(layers)
    )
    sizes = {name: encoder.min_input_size(name) for name in names}
    worst = max(sizes, key=sizes.__getitem__)
    need = sizes[worst]
    if h < need or w < need:
        where = f"{path}: " if path is not None else ""
        raise ImageTooSmallError(
            f"{where}image of {h}×{w} pixels is too small for layer {worst!r} of encoder {encoder.name!r}, "
            f"which needs at least {need}×{need} pixels (its feature map would be empty); "
            "use a larger image or a larger size"
        )


# ---- loading ---------------------------------------------------------------------------------------------


def _check_pixels(path: Path, h: int, w: int, max_pixels: int | None, what: str) -> None:
    if max_pixels is not None and h * w > max_pixels:
        raise ImageError(
            f"{path}: {what} {w}×{h} = {h * w:,} pixels, more than the limit of {max_pixels:,} "
            "(max_pixels); resize to fewer pixels or raise the limit (max_pixels=None disables it)"
        )


def _check_path(path: Path) -> None:
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image file (list_images() lists a folder)")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty, not an image")


def _exif_transposed(image: Image.Image, path: Path) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except (*_DECODE_ERRORS, KeyError, TypeError) as e:
        warnings.warn(f"{path}: ignoring unreadable EXIF orientation ({e})", stacklevel=3)
        return image


def _decode(path: Path, max_pixels: int | None) -> Tensor:
    """Open, guard, decode and convert one file; Pillow errors become :class:`ImageError`."""
    try:
        with warnings.catch_warnings():
            # Pillow's bomb *warning* duplicates our own max_pixels guard; its bomb *error* still applies
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                _check_pixels(path, image.height, image.width, max_pixels, "the image has")
                image.load()
                return image_to_tensor(_exif_transposed(image, path))
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(
            f"{path}: rejected by Pillow's decompression-bomb guard, too many pixels ({e})"
        ) from e
    except UnidentifiedImageError as e:
        raise ImageError(f"{path}: not an image (Pillow recognises no image format in it)") from e
    except PermissionError as e:
        raise ImageError(f"{path}: cannot be read (permission denied)") from e
    except _DECODE_ERRORS as e:
        if "truncated" in str(e).lower():
            raise ImageError(
                f"{path}: truncated image, the file ends before the image data does ({e})"
            ) from e
        raise ImageError(f"{path}: corrupt or unsupported image data ({type(e).__name__}: {e})") from e


def load_image(
    path: PathLike,
    size: int | Sequence[int] | None = None,
    *,
    longer_side: int | None = None,
    interpolation: str = "bicubic",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    encoder: SupportsMinInputSize | None = None,
    layers: str | Iterable[str] | None = None,
) -> Tensor:
    """Read an image file as ``[3, H, W]`` float32 RGB in [0, 1].

    Args:
        path: the image file.
        size: an int resizes the shorter side to it; ``(H, W)`` resizes to exactly that. ``None`` keeps
            the size (unless ``longer_side``).
        longer_side: resize the longer side to this instead (aspect ratio kept).
        interpolation: "bicubic" (default) or "bilinear"; antialiased when shrinking.
        max_pixels: refuse images (before and after resizing) with more pixels; ``None`` disables the
            guard (Pillow's own decompression-bomb limit still applies and is reported the same way).
        encoder, layers: if an encoder is given, check that the (resized) image is large enough for
            ``layers`` (all of its layers if ``None``).

    Raises:
        ImageError: missing file, directory, empty file, not an image, truncated or corrupt data, too many
            pixels. ImageTooSmallError: too small for the encoder's layers.
    """
    path = Path(path).expanduser()
    _check_path(path)
    image = _decode(path, max_pixels)
    h, w = target_size(image.shape[-2], image.shape[-1], size, longer_side=longer_side)
    _check_pixels(path, h, w, max_pixels, "the resized image would have")
    image = resize_image(image, (h, w), interpolation=interpolation)
    if encoder is not None:
        check_image_size(image, encoder, layers, path=path)
    return image


# ---- saving ----------------------------------------------------------------------------------------------


def save_image(tensor: Tensor, path: PathLike, *, quality: int = 95) -> Path:
    """Write an image tensor to ``path``; the format follows the suffix (.png, .jpg, …).

    Args:
        tensor: ``[3, H, W]`` or ``[1, 3, H, W]`` RGB, or ``[1, H, W]`` / ``[H, W]`` grayscale; values are
            clamped to [0, 1] and rounded to 8 bits.
        path: destination; parent folders are created. Written atomically (a temporary file in the same
            folder, renamed when complete; :func:`adain.atomic.atomic_write`): an interruption or a full
            disk leaves no partial file under ``path``, and an existing file stays as it was.
        quality: JPEG/WebP quality.

    Returns:
        The path written.

    Raises:
        ImageError: wrong shape, non-finite values, a suffix Pillow cannot write, or the file system
            refused the write (full or read-only disk, permissions); the ``OSError`` is its ``__cause__``.
    """
    path = Path(path).expanduser()
    x = tensor.detach().to("cpu", torch.float32)
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ImageError(f"{path}: cannot save a tensor of shape {tuple(tensor.shape)}; expected [3, H, W]")
    if not torch.isfinite(x).all():
        raise ImageError(f"{path}: the image tensor contains NaN or infinite values")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ImageError(
            f"{path}: unknown or unwritable image file suffix {path.suffix!r} (use .png or .jpg)"
        )
    pixels = x.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        return atomic_write(path, lambda fh: image.save(fh, format=fmt, **options))
    except OSError as e:
        raise ImageError(f"{path}: cannot write the image ({e.strerror or e}); nothing was written") from e


# ---- folders ---------------------------------------------------------------------------------------------


def _why_not_image(path: Path) -> str | None:
    """``None`` if ``path`` looks like a readable image (header only), else the reason."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return f"suffix {path.suffix or '(none)'!r} is not an image suffix"
    if path.stat().st_size == 0:
        return "empty file"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path):
                return None
    except Image.DecompressionBombError:
        return None  # an image, just a huge one: load_image reports it
    except UnidentifiedImageError:
        return "not a recognised image format"
    except _DECODE_ERRORS as e:
        return f"unreadable ({type(e).__name__}: {e})"


def _inside(path: Path, folders: Sequence[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


def list_images(folder: PathLike, *, exclude: Iterable[PathLike] = ()) -> list[Path]:
    """All image files under ``folder``, recursively, sorted.

    Files are kept if their suffix is in :data:`IMAGE_EXTENSIONS` and Pillow recognises their header;
    every other file is skipped with one :class:`SkippedFileWarning` naming it. Hidden files and folders
    (names starting with ".") are skipped silently, and so is everything inside the ``exclude`` folders
    (e.g. an output folder inside the input folder).

    Raises:
        ImageError: ``folder`` is missing or not a directory.
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise ImageError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a folder (load_image() reads a single file)")
    excluded = [Path(f).expanduser().resolve() for f in exclude]
    images = []
    for path in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts) or not path.is_file():
            continue
        if excluded and _inside(path.resolve(), excluded):
            continue
        reason = _why_not_image(path)
        if reason is None:
            images.append(path)
        else:
            warnings.warn(f"skipping {path}: not an image ({reason})", SkippedFileWarning, stacklevel=2)
    return images
