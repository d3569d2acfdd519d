"""HDR references: finding them (never the training split), reading and downsampling them.

The default references are the evaluation split of ``/work/shared/data/hdr``
(``training/split.py``) plus Blender's studio lights; quick mode takes a fixed small mix.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..inference.errors import UnsupportedImageError
from . import lighting, synth

logger = logging.getLogger(__name__)


SHARED_DIR = Path(os.environ.get("LDR2HDR_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
DEFAULT_HDR_ROOT = SHARED_DIR / "data" / "hdr"
MAX_WIDTH = 1024
QUICK_PANORAMAS = 4
QUICK_FLATS = 2


@dataclass
class Reference:
    """One HDR reference prepared for evaluation (pixels float32 HxWx3, linear)."""

    label: str
    path: Path
    pixels: np.ndarray
    panorama: bool
    original_size: tuple[int, int]  # (width, height) before downsampling


def _is_training_file(path: Path) -> bool:
    """True for a file the fixed split reserves for training (never evaluate on those)."""
    try:
        from ..training import split
    except ImportError:  # installed without the training folder: nothing is known to be training data
        return False
    return path.name in split.TRAIN_SPLIT


def find_references(ref_paths: list[str | Path], *, exclude_training: bool = True) -> list[Path]:
    """Expand folders (recursively) and files to a sorted, de-duplicated list of .exr/.hdr files."""
    found: list[Path] = []
    for entry in ref_paths:
        p = Path(entry)
        if p.is_dir():
            found += [q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in (".exr", ".hdr")]
        elif p.is_file():
            found.append(p)
        else:
            raise UnsupportedImageError("reference path does not exist", p)
    unique = sorted({q.resolve() for q in found})
    if exclude_training:
        skipped = [q for q in unique if _is_training_file(q)]
        if skipped:
            logger.info("skipping %d training-split references", len(skipped))
        unique = [q for q in unique if not _is_training_file(q)]
    return unique


def default_reference_paths() -> list[Path]:
    """The evaluation split of ``/work/shared/data/hdr`` plus Blender's studio lights (when present)."""
    try:
        from ..training import split
    except ImportError:
        split = None
    if split is not None:
        return split.eval_files(DEFAULT_HDR_ROOT)
    paths = []
    folder = synth.ocio_config_path().parent.parent / "studiolights" / "world"
    if folder.is_dir():
        paths = sorted(folder.glob("*.exr"))
    return paths


def read_hdr(path: str | Path) -> np.ndarray:
    """Read a linear HDR file as float32 HxWx3 (via ``io.read_image``, else OpenImageIO)."""
    try:
        from ..inference.io import read_image
    except ImportError:
        read_image = None
    if read_image is not None:
        return np.asarray(read_image(path).pixels, dtype=np.float32)
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise UnsupportedImageError(oiio.geterror() or "cannot open", path)
    try:
        spec = inp.spec()
        names = [n.split(".")[-1].upper() for n in spec.channelnames]
        chans = [names.index(c) for c in "RGB"] if all(c in names for c in "RGB") else [0, 1, 2]
        pixels = inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)
        err = inp.geterror()
    finally:
        inp.close()
    if pixels is None or err:
        raise UnsupportedImageError(err or "cannot decode", path)
    pixels = np.asarray(pixels, dtype=np.float32).reshape(spec.height, spec.width, spec.nchannels)
    if spec.nchannels < 3:
        return np.repeat(pixels[..., :1], 3, axis=2)
    return np.ascontiguousarray(pixels[..., chans])


def _label(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def load_reference(path: str | Path, max_width: int = MAX_WIDTH) -> Reference:
    """Read one reference and area-downsample it to at most ``max_width`` pixels wide."""
    path = Path(path)
    pixels = read_hdr(path)
    h, w = pixels.shape[:2]
    pixels = np.nan_to_num(np.maximum(pixels, 0.0), nan=0.0, posinf=0.0)
    if w > max_width:
        nh = max(1, round(h * max_width / w))
        pixels = lighting.area_downsample(pixels, nh, max_width).astype(np.float32)
    return Reference(_label(path), path, pixels.astype(np.float32), lighting.is_equirect((h, w)), (w, h))


def _stable_int(*parts) -> int:
    text = "\x1f".join(str(p) for p in parts)
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], 16)


def _quick_subset(paths: list[Path]) -> list[Path]:
    """A fixed small mix: the first panoramas and flat images in hash order of their labels."""
    ordered = sorted(paths, key=lambda p: _stable_int("quick", _label(p)))
    panos = [p for p in ordered if lighting.is_equirect(image_size(p)[::-1])]
    flats = [p for p in ordered if p not in panos]
    chosen = panos[:QUICK_PANORAMAS] + flats[:QUICK_FLATS]
    if len(chosen) < QUICK_PANORAMAS + QUICK_FLATS:
        chosen += [p for p in ordered if p not in chosen][: QUICK_PANORAMAS + QUICK_FLATS - len(chosen)]
    return sorted(chosen, key=_label)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise UnsupportedImageError(oiio.geterror() or "cannot open", path)
    try:
        spec = inp.spec()
        return int(spec.width), int(spec.height)
    finally:
        inp.close()
