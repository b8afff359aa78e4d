"""Assemble the decoder-training data set, outside the repository, from Debian wallpaper packages.

    python -m experiments.training_data [--output ~/.cache/adain-mmd/training-data]
                                        [--packages mate-backgrounds gnome-backgrounds ...]
                                        [--styles ../shared/data/adain-paper/style]

The content images are the raster wallpapers (JPEG, PNG, WebP) of Debian packages fetched by name with
``apt-get download`` and unpacked with ``dpkg-deb -x``; nothing is installed on the system. A package given
as ``PACKAGE:GLOB`` contributes only the files whose path inside the package matches ``GLOB``
(:func:`fnmatch.fnmatchcase` on the POSIX path, case-sensitive; ``*`` also crosses folders), e.g. the
example photos of OpenCV's documentation (:data:`PHOTO_PACKAGES`)::

    python -m experiments.training_data --output ~/.cache/adain-mmd/photo-data --packages \
        "opencv-doc:usr/share/doc/opencv-doc/examples/*.jpg" --styles none

Images with a shorter side below ``--min-side`` (icons, thumbnails) are left out, and byte-identical files
are kept once. The style images are the files of ``--styles`` (by default the AdaIN paper's styles beside
the repository; ``none`` for a content-only set). Every image whose shorter side exceeds
``--shorter-side`` (512, what ``adain train`` resizes to anyway) is stored downscaled to it (Lanczos, as
RGB PNG), so that training does not spend its time decoding 8K wallpapers; smaller RGB ones are copied
byte for byte, other modes converted to RGB PNG. The result::

    OUTPUT/content/<package>/<relative path inside the package>
    OUTPUT/style/<file name>
    OUTPUT/manifest.json      packages with versions, every file with its source and the source's sha256

which is what ``adain train --content-dir OUTPUT/content --style-dir OUTPUT/style`` reads. Running it again
rebuilds the two folders from scratch, so the data set is a function of the package versions in the
archive. The images never go into the repository.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote

from PIL import Image

__all__ = ["DEFAULT_OUTPUT", "DEFAULT_PACKAGES", "PHOTO_PACKAGES", "assemble", "main", "split_spec"]

DEFAULT_PACKAGES = (
    "mate-backgrounds",
    "gnome-backgrounds",
    "ukui-wallpapers",
    "lomiri-wallpapers",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "plasma-workspace-wallpapers",
    "sway-backgrounds",
)
# Photographs: the example images of OpenCV's documentation (street scenes, fruit, animals, faces, signs).
PHOTO_PACKAGES = ("opencv-doc:usr/share/doc/opencv-doc/examples/*.jpg",)
DEFAULT_OUTPUT = Path("~/.cache/adain-mmd/training-data")
DEFAULT_STYLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "adain-paper" / "style"
RASTER_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _run(command: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise SystemExit(f"training_data: error: {command[0]} not found (needs Debian/Ubuntu)") from None
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"training_data: error: {' '.join(command)} failed:\n{e.stderr.strip()}") from None
    return done.stdout


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _usable(path: Path, min_side: int) -> tuple[bool, str]:
    """Whether ``path`` decodes as an image with a shorter side ≥ ``min_side``, and why not."""
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            width, height = image.size
    except Exception as e:  # any decoder failure means "not usable"
        return False, f"not readable ({type(e).__name__})"
    if min(width, height) < min_side:
        return False, f"{width}×{height} is smaller than {min_side} px"
    return True, ""


def store(source: Path, target: Path, shorter_side: int) -> Path:
    """Copy ``source`` to ``target``; as an RGB PNG, downscaled to ``shorter_side``, when it is larger or
    not RGB (grey, palette, RGBA: alpha dropped)."""
    with Image.open(source) as image:
        if min(image.size) <= shorter_side and image.mode == "RGB":
            shutil.copyfile(source, target)
            return target
        scale = min(1.0, shorter_side / min(image.size))
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        rgb = image.convert("RGB")
        if size != rgb.size:
            rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    target = target.with_suffix(".png")
    rgb.save(target)
    return target


def split_spec(spec: str) -> tuple[str, str]:
    """``"PACKAGE:GLOB"`` → ``(PACKAGE, GLOB)``; a plain ``"PACKAGE"`` → ``(PACKAGE, "*")``."""
    package, _, pattern = spec.partition(":")
    if not package or (spec.endswith(":") and not pattern):
        raise SystemExit(f"training_data: error: {spec!r} is not PACKAGE or PACKAGE:GLOB")
    return package, pattern or "*"


def fetch_packages(packages: list[str], work: Path) -> dict[str, Path]:
    """Download and unpack ``packages`` in ``work``; returns ``{package: unpacked root}``."""
    _run(["apt-get", "download", *packages], cwd=work)
    roots = {}
    for package in packages:
        debs = sorted(work.glob(f"{package}_*.deb"))
        if not debs:
            raise SystemExit(f"training_data: error: apt-get did not download {package}")
        root = work / "unpacked" / package
        root.mkdir(parents=True)
        _run(["dpkg-deb", "-x", str(debs[-1]), str(root)], cwd=work)
        roots[package] = root
    return roots


def package_version(package: str, work: Path) -> str:
    debs = sorted(work.glob(f"{package}_*.deb"))
    return unquote(debs[-1].name.split("_")[1]) if debs else "?"


def assemble(
    output: Path,
    packages: list[str],
    styles: Path | None,
    min_side: int = 256,
    shorter_side: int = 512,
    log=print,
) -> dict[str, object]:
    """Build ``output/content`` and ``output/style`` (replacing them) and return the manifest.

    ``packages`` are ``PACKAGE`` or ``PACKAGE:GLOB`` specs (:func:`split_spec`); ``styles=None`` leaves
    ``output/style`` empty."""
    specs = dict(split_spec(spec) for spec in packages)
    if styles is not None and not styles.is_dir():
        raise SystemExit(f"training_data: error: style folder {styles} does not exist (see --styles)")
    output = output.expanduser()
    for sub in ("content", "style"):
        shutil.rmtree(output / sub, ignore_errors=True)
        (output / sub).mkdir(parents=True)
    manifest: dict[str, object] = {"packages": {}, "patterns": specs, "content": [], "style": []}
    manifest["skipped"] = []
    seen: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="adain_debs_") as tmp:
        work = Path(tmp)
        roots = fetch_packages(list(specs), work)
        for package, root in roots.items():
            manifest["packages"][package] = package_version(package, work)
            files = sorted(
                p
                for p in root.rglob("*")
                if p.is_file()
                and p.suffix.lower() in RASTER_SUFFIXES
                and fnmatch.fnmatchcase(p.relative_to(root).as_posix(), specs[package])
            )
            kept = 0
            for path in files:
                relative = path.relative_to(root)
                ok, why = _usable(path, min_side)
                digest = _sha256(path)
                if ok and digest in seen:
                    ok, why = False, "duplicate of an earlier file"
                if not ok:
                    manifest["skipped"].append({"source": f"{package}:/{relative}", "reason": why})
                    continue
                seen.add(digest)
                target = output / "content" / package / relative.name
                if target.exists():  # same name in two folders of one package
                    target = target.with_name(f"{digest[:8]}_{relative.name}")
                target.parent.mkdir(parents=True, exist_ok=True)
                target = store(path, target, shorter_side)
                manifest["content"].append(
                    {
                        "file": str(target.relative_to(output)),
                        "source": f"{package}:/{relative}",
                        "bytes": target.stat().st_size,
                        "source_sha256": digest,
                    }
                )
                kept += 1
            log(f"{package} {manifest['packages'][package]}: {kept} of {len(files)} raster images kept")
    for path in sorted(p for p in styles.iterdir() if p.is_file()) if styles is not None else []:
        ok, why = _usable(path, min_side)
        if not ok:
            manifest["skipped"].append({"source": str(path), "reason": why})
            continue
        target = store(path, output / "style" / path.name, shorter_side)
        manifest["style"].append(
            {
                "file": str(target.relative_to(output)),
                "source": str(path),
                "bytes": target.stat().st_size,
                "source_sha256": _sha256(path),
            }
        )
    log(f"styles from {styles}: {len(manifest['style'])} images" if styles else "no styles (--styles none)")
    (output / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="data set folder (%(default)s)")
    p.add_argument(
        "--packages",
        nargs="+",
        default=list(DEFAULT_PACKAGES),
        help="Debian packages, each PACKAGE or PACKAGE:GLOB (files inside the package matching GLOB)",
    )
    p.add_argument("--styles", default=str(DEFAULT_STYLES), help="style images (the paper's), or none")
    p.add_argument("--min-side", type=int, default=256, help="smallest shorter side kept (256 px)")
    p.add_argument("--shorter-side", type=int, default=512, help="larger images are downscaled to this")
    args = p.parse_args(argv)
    styles = None if args.styles == "none" else Path(args.styles)
    manifest = assemble(args.output, args.packages, styles, args.min_side, args.shorter_side)
    print(
        f"{len(manifest['content'])} content and {len(manifest['style'])} style images in "
        f"{args.output.expanduser()} ({len(manifest['skipped'])} files skipped; see manifest.json)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
