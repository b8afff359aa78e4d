"""Training data: recursive image folders, random crops and a deterministic, resumable infinite sampler.

>>> data = ImageFolder("photos/", image_size=512, crop_size=256)       # ImageError if nothing usable
>>> sampler = InfiniteSampler(len(data), seed=0, stream=0)              # rank=0, world_size=1
>>> loader = DataLoader(data, batch_size=8, sampler=sampler)            # batches [8, 3, 256, 256]
>>> state = sampler.state_dict(consumed=8 * iterations)                 # plain data, for a checkpoint
>>> sampler = InfiniteSampler.from_state_dict(len(data), state)         # continues exactly there

**Randomness without state.** Sample number ``s`` of a stream is a pure function of ``(seed, stream, s)``:
the epoch ``s // L`` fixes a permutation of the files (a :class:`torch.Generator` seeded from
``(seed, stream, epoch)``) and the random crop of each draw uses its own generator seeded from
``(seed, stream, epoch, slot)``. No global RNG is read or changed, worker processes need no seeding, and
the only state to save for an exact resume is how many samples were consumed.

**Multi-process.** ``rank`` / ``world_size`` shard each epoch's permutation (``perm[rank::world_size]``,
padded by wrapping so every rank has ``L = ceil(n / world_size)`` slots). A draw's crop depends on its slot
in the global permutation, not on the rank, so a sample is cropped the same way whatever the world size.

**Unreadable files.** :func:`adain.io.list_images` skips non-images with one warning each; a file that
passes that header check but fails to decode at load time is skipped too (one :class:`SkippedFileWarning`
per file and process) and the next file in folder order is used instead, which keeps the stream
deterministic.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from adain.errors import ImageError
from adain.io import SkippedFileWarning, list_images, load_image

__all__ = ["ImageFolder", "InfiniteSampler", "center_crop", "derive_seed", "random_crop"]

PathLike = str | os.PathLike[str]


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers, the same in every process and Python version (BLAKE2b, not ``hash``)."""
    data = b"".join(int(p).to_bytes(16, "little", signed=True) for p in parts)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


def random_crop(image: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """``[3, H, W]`` → ``[3, size, size]`` at a position drawn from ``generator`` (needs ``H, W ≥ size``)."""
    h, w = image.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot crop {size}×{size} from an image of {h}×{w}")
    top = int(torch.randint(0, h - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - size + 1, (1,), generator=generator))
    return image[..., top : top + size, left : left + size]


def center_crop(image: Tensor, size: int) -> Tensor:
    """``[3, H, W]`` → ``[3, min(H, size), min(W, size)]`` from the centre."""
    h, w = image.shape[-2:]
    th, tw = min(h, size), min(w, size)
    top, left = (h - th) // 2, (w - tw) // 2
    return image[..., top : top + th, left : left + tw]


class ImageFolder(Dataset):
    """The images under a folder (recursively), resized and randomly cropped.

    Indexed by ``(index, draw_seed)`` pairs as :class:`InfiniteSampler` yields them:
    ``data[(i, seed)]`` → ``[3, crop_size, crop_size]`` float32 in [0, 1]: file ``i`` (or the next usable
    one, see module doc) with its shorter side resized to ``image_size`` and a crop drawn from a generator
    seeded with ``seed``. A plain int index uses seed 0.

    Args:
        folder: searched recursively (:func:`adain.io.list_images`).
        image_size: shorter side after resizing.
        crop_size: side of the square crop (``≤ image_size``).
        augment: draws the crop instead of a plain random crop (e.g. :class:`adain.augment.StyleAugment`:
            scale crops and colour changes), from the same seeded generator.
        cache: keep each decoded, resized image in memory (as uint8: about ``3 · image_size² · 1.5``
            bytes per image), so an image is decoded once per process rather than at every draw.

    Raises:
        ImageError: missing folder, or a folder with no usable image (the message names it).
        ValueError: ``crop_size > image_size`` or non-positive sizes.
    """

    def __init__(
        self,
        folder: PathLike,
        image_size: int = 512,
        crop_size: int = 256,
        *,
        augment: Callable[[Tensor, int, torch.Generator], Tensor] | None = None,
        cache: bool = False,
    ) -> None:
        if image_size < 1 or crop_size < 1 or crop_size > image_size:
            raise ValueError(f"need 1 ≤ crop_size ≤ image_size; got crop {crop_size}, image {image_size}")
        self.folder = Path(folder).expanduser()
        self.image_size, self.crop_size = int(image_size), int(crop_size)
        self.paths: list[Path] = list_images(self.folder)  # one SkippedFileWarning per non-image
        if not self.paths:
            raise ImageError(f"{self.folder}: no usable image in this folder (searched recursively)")
        self._bad: set[int] = set()
        self.augment = augment
        self._cache: dict[int, Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> Tensor | None:
        """File ``index`` resized (``[3, H, W]``), or ``None`` (and one warning) if it cannot be decoded."""
        if index in self._bad:
            return None
        if self._cache is not None and index in self._cache:
            return self._cache[index].float() / 255
        path = self.paths[index]
        try:
            image = load_image(path, size=self.image_size)
        except ImageError as e:
            self._bad.add(index)
            warnings.warn(f"skipping an undecodable image: {e}", SkippedFileWarning, stacklevel=2)
            return None
        if self._cache is not None:  # the cached copy is 8-bit, as the file was: store and reload it so
            self._cache[index] = (image * 255).round().to(torch.uint8)  # cached and fresh draws agree
            return self._cache[index].float() / 255
        return image

    def __getitem__(self, key: tuple[int, int] | int) -> Tensor:
        index, seed = (key, 0) if isinstance(key, int) else key
        n = len(self.paths)
        for step in range(n):
            image = self.load((int(index) + step) % n)
            if image is not None:
                generator = torch.Generator().manual_seed(int(seed))
                if self.augment is not None:
                    return self.augment(image, self.crop_size, generator)
                return random_crop(image, self.crop_size, generator).contiguous()
        raise ImageError(f"{self.folder}: none of its {n} image file(s) could be decoded")


class InfiniteSampler(Sampler):
    """An endless, deterministic stream of ``(index, draw_seed)`` for one rank, from sample ``start`` on.

    Args:
        n: number of items (files).
        seed: run seed; ``stream`` tells apart independent streams (content 0, style 1) of one run.
        rank, world_size: this process's shard (see module doc); 0 and 1 for a single process.
        start: number of samples of this rank already consumed (resume point).
    """

    def __init__(
        self, n: int, seed: int, stream: int = 0, *, rank: int = 0, world_size: int = 1, start: int = 0
    ) -> None:
        if n < 1:
            raise ValueError(f"n must be positive; got {n}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 ≤ rank < world_size; got rank {rank}, world_size {world_size}")
        if start < 0:
            raise ValueError(f"start must be ≥ 0; got {start}")
        self.n, self.seed, self.stream = int(n), int(seed), int(stream)
        self.rank, self.world_size, self.start = int(rank), int(world_size), int(start)
        self.per_rank = -(-self.n // self.world_size)  # L = ceil(n / world_size)

    def permutation(self, epoch: int) -> Tensor:
        """Epoch ``epoch``'s order of the ``n`` items, ``[n]`` int64."""
        gen = torch.Generator().manual_seed(derive_seed(self.seed, self.stream, epoch))
        return torch.randperm(self.n, generator=gen)

    def draw(self, sample: int) -> tuple[int, int]:
        """``(index, draw_seed)`` of this rank's sample number ``sample``."""
        epoch, j = divmod(int(sample), self.per_rank)
        slot = self.rank + j * self.world_size  # position in the padded global permutation
        perm = self.permutation(epoch)
        return int(perm[slot % self.n]), derive_seed(self.seed, self.stream, epoch, slot)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        sample = self.start
        epoch, perm = -1, None
        while True:
            e, j = divmod(sample, self.per_rank)
            if e != epoch:
                epoch, perm = e, self.permutation(e)
            slot = self.rank + j * self.world_size
            yield int(perm[slot % self.n]), derive_seed(self.seed, self.stream, epoch, slot)
            sample += 1

    def state_dict(self, consumed: int) -> dict[str, int]:
        """Plain data for a checkpoint: the stream's parameters and ``consumed`` samples so far."""
        epoch, position = divmod(int(consumed), self.per_rank)
        return {
            "n": self.n,
            "seed": self.seed,
            "stream": self.stream,
            "rank": self.rank,
            "world_size": self.world_size,
            "consumed": int(consumed),
            "epoch": epoch,
            "position": position,
        }

    @classmethod
    def from_state_dict(cls, n: int, state: Mapping[str, Any]) -> InfiniteSampler:
        """The sampler that continues after ``state['consumed']`` samples.

        Raises:
            ValueError: the folder now holds a different number of files than when ``state`` was saved
                (the stream would not continue exactly).
        """
        if int(state["n"]) != n:
            raise ValueError(
                f"the data set had {state['n']} usable files when the checkpoint was written and has {n} "
                "now; an exact resume needs the same files"
            )
        return cls(
            n,
            int(state["seed"]),
            int(state["stream"]),
            rank=int(state["rank"]),
            world_size=int(state["world_size"]),
            start=int(state["consumed"]),
        )
