"""Where ``adain stylize`` writes: one unique output path per (content, style group), checked up front.

**Naming.** The output of content ``C`` and styles ``S1 … Sk`` (interpolated into one image) is
``<C label>_stylized_<S1 label>+…+<Sk label>.<ext>``, in the output folder, under the sub-folder that ``C``
has inside the ``--content`` folder (a content given as a file goes to the top of the output folder). A
label is the file's stem (``photo.jpg`` → ``photo``) unless that makes two inputs of one run share an
output name; then, for those inputs only and in this order until the names differ:

1. the file name with its suffix (``x.png`` and ``x.jpg`` → ``x.png``, ``x.jpg``);
2. its path inside the folder given, ``/`` written as ``-`` (styles ``a/art.jpg``, ``b/art.jpg`` →
   ``a-art.jpg``, ``b-art.jpg``);
3. a counter ``~2``, ``~3`` … in sorted path order.

So the common case (stems that differ) gives ``photo_stylized_art.jpg``, and no two results ever share a
path: :func:`plan_outputs` raises :class:`~adain.errors.OutputError` if any still would.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from adain.errors import OutputError
from adain.torchfiles import listing

__all__ = ["check_output_folder", "inside", "plan_outputs", "unique_labels"]


def _label(path: Path, root: Path | None, level: int) -> str:
    if level == 0:
        return path.stem
    if level == 1 or root is None:
        return path.name
    return "-".join(path.relative_to(root).parts)


def unique_labels(paths: Iterable[Path], root: Path | None = None) -> dict[Path, str]:
    """A distinct label per distinct path, by the rules of the module doc.

    Args:
        paths: input files (repeats allowed; they get the same label).
        root: the folder they were listed from (for rule 2), or ``None``.
    """
    unique = sorted(set(paths))
    level = dict.fromkeys(unique, 0)
    while True:
        labels = {p: _label(p, root, level[p]) for p in unique}
        groups: dict[str, list[Path]] = defaultdict(list)
        for p in unique:
            groups[labels[p]].append(p)
        clashes = [ps for ps in groups.values() if len(ps) > 1]
        if not clashes:
            return labels
        bumped = False
        for ps in clashes:
            for p in ps:
                if level[p] < 2:
                    level[p] += 1
                    bumped = True
        if not bumped:  # rule 3: a counter for the paths that still clash
            for ps in clashes:
                for n, p in enumerate(ps[1:], start=2):
                    labels[p] = f"{labels[p]}~{n}"
            return labels


def plan_outputs(
    output: Path,
    contents: Sequence[Path],
    content_root: Path | None,
    style_groups: Sequence[Sequence[Path]],
    style_root: Path | None,
    ext: str,
) -> dict[tuple[Path, tuple[Path, ...]], Path]:
    """The output path of every (content, style group) pair, all distinct.

    Raises:
        OutputError: two pairs would still write the same file (names crafted to collide, such as a
            content ``a_stylized_b`` beside a style ``b_stylized_c``); the message lists them.
    """
    by_folder: dict[Path, list[Path]] = defaultdict(list)  # contents clash only within one output folder
    for content in contents:
        by_folder[content.parent].append(content)
    content_labels = {
        p: label for ps in by_folder.values() for p, label in unique_labels(ps, content_root).items()
    }
    style_labels = unique_labels([s for g in style_groups for s in g], style_root)
    ext = ext.lower().lstrip(".")
    plan: dict[tuple[Path, tuple[Path, ...]], Path] = {}
    seen: dict[Path, tuple[Path, tuple[Path, ...]]] = {}
    clashes: list[str] = []
    for content in contents:
        folder = output if content_root is None else output / content.parent.relative_to(content_root)
        for group in style_groups:
            key = (content, tuple(group))
            name = f"{content_labels[content]}_stylized_{'+'.join(style_labels[s] for s in group)}.{ext}"
            path = folder / name
            if path in seen:
                other = seen[path]
                clashes.append(
                    f"{path} ({other[0]} × {'+'.join(map(str, other[1]))} and {content} × "
                    f"{'+'.join(map(str, group))})"
                )
            seen[path] = key
            plan[key] = path
    if clashes:
        raise OutputError(
            f"two results would be written to the same file: {listing(clashes)}; rename an input file"
        )
    return plan


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both resolved)."""
    path, folder = path.expanduser().resolve(), folder.expanduser().resolve()
    return path == folder or folder in path.parents


def check_output_folder(output: Path) -> None:
    """Check that ``output`` is a folder that can be written, or can be created; creates nothing.

    Raises:
        OutputError: it is a file, a file is in the way of creating it, or writing is refused
            (read-only file system, permissions); the message says which.
    """
    if output.exists() and not output.is_dir():
        raise OutputError(f"--output {output} is a file, not a folder; give a folder to write into")
    existing = output
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"--output {output} cannot be created: {existing} is a file, not a folder")
    where = "is not writable" if existing == output else f"cannot be created in {existing}"
    try:  # a real (nameless) write: access() cannot tell everything, e.g. a read-only mount seen by root
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        why = "a read-only file system" if e.errno == errno.EROFS else (e.strerror or str(e))
        raise OutputError(f"--output {output} {where} ({why})") from None
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"--output {output} {where} (permission denied)")
