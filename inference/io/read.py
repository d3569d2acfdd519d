"""Reading image files with OpenImageIO.

:func:`read_image` returns float32 ``(H, W, 3)`` pixels, top-down rows, with EXIF
orientation already applied. Integer formats (8/16-bit JPEG, PNG, TIFF, WebP) are scaled
to [0, 1]; float formats (EXR, Radiance HDR, float TIFF) are linear values exactly as
stored. Alpha, when present, is returned aside as a float32 ``(H, W)`` array and never
mixed into the colour. Headers are checked (size, channels) before any pixel memory is
allocated.

Every problem with an input file is raised as :class:`~..errors.UnsupportedImageError`,
whose ``str()`` is one line naming the file.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

from ..errors import UnsupportedImageError
from ..imaging import unit_float
from .files import (
    DEFAULT_MAX_PIXELS,
    MAX_CHANNELS,
    METADATA_PREFIX,
    _check_file,
    _first_line,
    _native_stderr_captured,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExifInfo:
    """Camera settings read from EXIF, when the file has them.

    Attributes:
        exposure_time: shutter time in seconds, or None.
        f_number: aperture as an f-number (e.g. 2.8), or None.
        iso: sensitivity (ISO speed), or None.
        camera: the camera that made the photo (EXIF ``Make`` and ``Model``, e.g. ``"Canon EOS 5D
            Mark II"``), or None: renders, screenshots and files stripped of EXIF name none.
        orientation: EXIF orientation 1-8 as stored in the file. The pixels of a
            :class:`LoadedImage` are already rotated/flipped upright, so callers
            must not apply it again.
    """

    exposure_time: float | None = None
    f_number: float | None = None
    iso: float | None = None
    camera: str | None = None
    orientation: int = 1

@dataclass(frozen=True)
class LoadedImage:
    """One decoded image.

    Attributes:
        path: the file it was read from.
        pixels: float32 ``(H, W, 3)``, top-down rows, orientation applied. Integer
            formats in [0, 1] (``value / 255`` or ``value / 65535``); float formats
            linear as stored, never clamped above (negatives are set to 0). With
            ``read_image(codes=True)``, 8/16-bit files give their codes instead (uint8 or
            uint16, a quarter or half of the memory; :func:`..imaging.unit_float` turns
            them into the floats above).
        alpha: float32 ``(H, W)`` or None. Kept as stored: colour is NOT divided
            by it (premultiplied EXRs can hold emissive pixels with alpha 0).
        is_hdr: True for float data (EXR, Radiance HDR, float TIFF).
        bits: bits per sample of the stored data: 8, 16 (incl. half) or 32.
        format: OpenImageIO's format name: "jpeg", "png", "openexr", "tiff", ...
        exif: camera settings from EXIF (all None when absent).
    """

    path: str
    pixels: np.ndarray
    alpha: np.ndarray | None
    is_hdr: bool
    bits: int
    format: str
    exif: ExifInfo

def _check_spec(spec: oiio.ImageSpec, path: Path, max_pixels: int) -> None:
    """Refuse absurd headers before any pixel memory is allocated."""
    width, height, depth, nchannels = spec.width, spec.height, spec.depth, spec.nchannels
    if width <= 0 or height <= 0:
        raise UnsupportedImageError(f"image has no pixels ({width} x {height})", path)
    n_pixels = width * height
    if n_pixels > max_pixels:
        raise UnsupportedImageError(
            f"image is {width} x {height} = {n_pixels} pixels, above the limit of "
            f"{max_pixels} pixels (set --max-pixels)",
            path,
        )
    if depth > 1:
        raise UnsupportedImageError(f"volume images are not supported (depth {depth})", path)
    if spec.deep:
        raise UnsupportedImageError("deep images are not supported", path)
    if nchannels < 1 or nchannels > MAX_CHANNELS:
        raise UnsupportedImageError(
            f"image declares {nchannels} channels (supported: 1 to {MAX_CHANNELS})", path
        )

def _find_channel(names: list[str], label: str) -> int | None:
    """Index of channel ``label`` ("R"), else of the first layer's ``*.label`` ("left.R")."""
    lowered = [n.lower() for n in names]
    if label.lower() in lowered:
        return lowered.index(label.lower())
    suffix = "." + label.lower()
    for i, name in enumerate(lowered):
        if name.endswith(suffix):
            return i
    return None

def _choose_channels(spec: oiio.ImageSpec, path: Path) -> tuple[list[int], int | None]:
    """Pick the colour channels (1 = gray or 3 = RGB) and the alpha channel.

    Returns:
        (colour channel indices, alpha index or None).
    """
    names = list(spec.channelnames)
    n = spec.nchannels
    alpha = spec.alpha_channel if 0 <= spec.alpha_channel < n else None
    if alpha is None:
        alpha = _find_channel(names, "A")

    rgb = [_find_channel(names, c) for c in "RGB"]
    if all(i is not None for i in rgb):
        return [int(i) for i in rgb], alpha

    gray = _find_channel(names, "Y")
    if gray is not None and n <= 2:
        return [gray], alpha

    others = [i for i in range(n) if i != alpha]
    if len(others) == 1:
        return others, alpha
    if len(others) >= 3:
        if n > 4 or names[:3] != ["R", "G", "B"]:
            logger.warning(
                "%s: no R, G, B channels among %s; using %s as RGB",
                path, names, [names[i] for i in others[:3]],
            )
        return others[:3], alpha
    raise UnsupportedImageError(f"cannot interpret channels {names} as gray or RGB", path)

def _bits_of(spec: oiio.ImageSpec) -> int:
    base = spec.format.basetype
    if base in (oiio.UINT8, oiio.INT8):
        return 8
    if base in (oiio.UINT16, oiio.INT16, oiio.HALF):
        return 16
    return 32

def _positive_attribute(spec: oiio.ImageSpec, *names: str) -> float | None:
    for name in names:
        value = spec.getattribute(name)
        if isinstance(value, (tuple, list)):  # some writers store rationals/arrays
            value = value[0] if value else None
        if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
            return float(value)
    return None

def _camera(spec: oiio.ImageSpec) -> str | None:
    """``Make Model`` from EXIF (the model alone when it already starts with the make's first word,
    as in ``NIKON CORPORATION`` / ``NIKON D7000``), or None."""
    make, model = (" ".join(str(spec.getattribute(k) or "").replace("\x00", " ").split()) for k in ("Make", "Model"))
    if make and model.lower().split()[:1] == make.lower().split()[:1]:
        make = ""
    name = f"{make} {model}".strip()
    return name[:80] or None


def _read_exif(spec: oiio.ImageSpec, path: Path) -> ExifInfo:
    orientation = spec.get_int_attribute("Orientation", 1)
    if not 1 <= orientation <= 8:
        logger.warning("%s: ignoring invalid EXIF orientation %d", path, orientation)
        orientation = 1
    return ExifInfo(
        exposure_time=_positive_attribute(spec, "ExposureTime", "Exif:ExposureTime"),
        f_number=_positive_attribute(spec, "FNumber", "Exif:FNumber"),
        iso=_positive_attribute(
            spec, "Exif:PhotographicSensitivity", "Exif:ISOSpeedRatings", "Exif:ISOSpeed"
        ),
        camera=_camera(spec),
        orientation=orientation,
    )

def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip stored pixels so they display upright.

    Args:
        pixels: ``(H, W)`` or ``(H, W, C)`` array as stored in the file, top-down.
        orientation: EXIF orientation 1-8 (1 = already upright, 6 = the camera
            was turned so the image must be rotated 90 degrees clockwise).

    Returns:
        A contiguous array; ``(W, H, ...)`` for orientations 5-8.

    Not ``ImageBufAlgo.reorient``: in OpenImageIO 3.0 it swaps orientations 5
    and 7 (OpenImageIO issue #4661).
    """
    if orientation == 1:
        out = pixels
    elif orientation == 2:
        out = pixels[:, ::-1]
    elif orientation == 3:
        out = pixels[::-1, ::-1]
    elif orientation == 4:
        out = pixels[::-1, :]
    elif orientation == 5:
        out = np.swapaxes(pixels, 0, 1)
    elif orientation == 6:
        out = np.rot90(pixels, k=-1)
    elif orientation == 7:
        out = np.swapaxes(pixels[::-1, ::-1], 0, 1)
    elif orientation == 8:
        out = np.rot90(pixels, k=1)
    else:
        raise ValueError(f"EXIF orientation must be 1-8, got {orientation}")
    return np.ascontiguousarray(out)

def probe_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int, int]:
    """Read only the header: ``(width, height, channels)``. Raises UnsupportedImageError like
    :func:`read_image` for missing, unreadable or absurd files, without decoding pixels."""
    path = Path(path)
    _check_file(path)
    with _native_stderr_captured():
        inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise UnsupportedImageError(f"not a readable image: {_first_line(oiio.geterror(), 'unknown error')}", path)
    try:
        spec = inp.spec()
        _check_spec(spec, path, max_pixels)
        return int(spec.width), int(spec.height), int(spec.nchannels)
    finally:
        inp.close()

def read_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS, codes: bool = False) -> LoadedImage:
    """Read one image file into float32 RGB pixels.

    The header is checked first (size, channels) so a forged header is refused
    without decoding. After decoding, any decoder complaint (e.g. "Premature end
    of JPEG file", which libjpeg reports while still returning filled rows) makes
    the file count as corrupt. The format is sniffed from the content, so a PNG
    named ``.jpg`` reads fine (with a warning); the extension must still be one
    of :data:`SUPPORTED_EXTENSIONS`.

    Channel handling: gray is replicated to RGB; alpha is returned aside; with
    more than four channels (multi-layer/multi-view EXR) the channels named
    R, G, B (or the first ``<layer>.R/G/B``) are used; CMYK and palette files come
    out as RGB (OpenImageIO converts them). Only the first subimage is read.

    Value handling: integer data is scaled to [0, 1]. Float data is kept as
    stored, except that negative values (meaningless as light) are set to 0 with
    a warning, and NaN/Inf make the file refused (they would poison every later
    step).

    Args:
        path: image file.
        max_pixels: refuse images with more than this many pixels (width x height).
        codes: keep the pixels of 8/16-bit files as their integer codes (uint8/uint16);
            other files are read as float32 either way.

    Returns:
        :class:`LoadedImage` with ``pixels`` float32 ``(H, W, 3)``.

    Raises:
        UnsupportedImageError: missing, empty, corrupt, unsupported or too large.
    """
    path = Path(path)
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    _check_file(path)

    config = oiio.ImageSpec()
    # PNG/WebP store unassociated alpha; without this OIIO premultiplies it into
    # the colour, which would darken every semi-transparent pixel of the photo.
    config.attribute("oiio:UnassociatedAlpha", 1)
    with _native_stderr_captured():
        inp = oiio.ImageInput.open(str(path), config)
    if inp is None:
        message = _first_line(oiio.geterror(), "unknown error")
        raise UnsupportedImageError(f"not a readable image: {message}", path)
    try:
        spec = inp.spec()
        _check_spec(spec, path, max_pixels)
        format_name = inp.format_name()
        if path.suffix.lower() not in _extensions_of(format_name):
            logger.warning("%s: content is %s despite the file extension", path, format_name)
        colour, alpha_index = _choose_channels(spec, path)
        wanted = colour + ([alpha_index] if alpha_index is not None else [])
        first, last = min(wanted), max(wanted) + 1
        base = spec.format.basetype
        as_codes = codes and base in (oiio.UINT8, oiio.UINT16)
        with _native_stderr_captured():
            data = inp.read_image(0, 0, first, last, base if as_codes else oiio.FLOAT)
        error = inp.geterror() if inp.has_error else ""
        if data is None or error:
            message = _first_line(error, "decoder returned no pixels")
            raise UnsupportedImageError(f"corrupt or truncated file: {message}", path)
        exif = _read_exif(spec, path)
        is_hdr = spec.format.basetype in (oiio.HALF, oiio.FLOAT, oiio.DOUBLE)
        bits = _bits_of(spec)
    finally:
        inp.close()

    data = np.asarray(data, dtype=data.dtype if as_codes else np.float32).reshape(spec.height, spec.width, last - first)
    channels = [c - first for c in colour]
    # RGB codes as read need no copy (a 16384x8192 panorama: 0.4 GB)
    pixels = data if as_codes and channels == list(range(data.shape[-1])) else data[..., channels]
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    alpha = None if alpha_index is None else data[..., alpha_index - first]

    if is_hdr:
        pixels = _sanitize_float(pixels, path)
    elif not as_codes:
        # Guards against signed integer formats, which OIIO maps to [-1, 1].
        pixels = np.clip(pixels, 0.0, 1.0)

    pixels = apply_orientation(pixels, exif.orientation)
    if not as_codes:
        pixels = pixels.astype(np.float32, copy=False)
    if alpha is not None:
        alpha = unit_float(apply_orientation(alpha, exif.orientation))
    logger.debug(
        "read %s: %s %dx%d, %d-bit, hdr=%s, orientation=%d",
        path, format_name, pixels.shape[1], pixels.shape[0], bits, is_hdr, exif.orientation,
    )
    return LoadedImage(
        path=str(path), pixels=pixels, alpha=alpha, is_hdr=is_hdr, bits=bits,
        format=format_name, exif=exif,
    )

def _sanitize_float(pixels: np.ndarray, path: Path) -> np.ndarray:
    bad = int(np.count_nonzero(~np.isfinite(pixels)))
    if bad:
        raise UnsupportedImageError(f"contains {bad} non-finite values (NaN or Inf)", path)
    negative = int(np.count_nonzero(pixels < 0))
    if negative:
        logger.info("%s: %d negative values set to 0", path, negative)
        pixels = np.maximum(pixels, 0.0)
    return pixels

def _extensions_of(format_name: str) -> tuple[str, ...]:
    known = {
        "jpeg": (".jpg", ".jpeg"),
        "png": (".png",),
        "tiff": (".tif", ".tiff"),
        "webp": (".webp",),
        "openexr": (".exr",),
        "hdr": (".hdr",),
    }
    return known.get(format_name, ())

def read_exr_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Return the ``ldr2hdr:*`` header attributes of an image file.

    Keys are returned without the ``ldr2hdr:`` prefix. Values come back as str,
    int or float as stored (structured values were stored as JSON strings: use
    ``json.loads`` on them).

    Raises:
        UnsupportedImageError: the file cannot be opened.
    """
    path = Path(path)
    _check_file(path)
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise UnsupportedImageError(f"not a readable image: {_first_line(oiio.geterror(), 'unknown error')}", path)
    try:
        result = {}
        for attribute in inp.spec().extra_attribs:
            if attribute.name.startswith(METADATA_PREFIX):
                result[attribute.name[len(METADATA_PREFIX):]] = attribute.value
        return result
    finally:
        inp.close()
