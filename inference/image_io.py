"""Reading and writing image files with OpenImageIO.

Everything that touches the file system for pixels lives here, so the rest of
the package only ever sees plain arrays:

* :func:`read_image` returns float32 ``(H, W, 3)`` pixels, top-down rows, with
  EXIF orientation already applied. Integer formats (8/16-bit JPEG, PNG, TIFF,
  WebP) are scaled to [0, 1]; float formats (EXR, Radiance HDR, float TIFF) are
  linear values exactly as stored. Alpha, when present, is returned aside as a
  float32 ``(H, W)`` array and never mixed into the colour.
* :func:`write_exr`, :func:`write_png` and :func:`write_jpeg` write atomically:
  the image goes to a hidden temporary file in the destination folder, which is
  renamed over the destination only once it is complete. A crash or an error
  never leaves a partial file, and an existing file is untouched on failure.

Every problem with an input file is raised as
:class:`~.errors.UnsupportedImageError`, whose ``str()`` is one line naming the
file. Failures while writing are raised as :class:`~.errors.Ldr2HdrError`
(or :class:`~.errors.OutputExistsError`); wrong array shapes are programming
errors and raise ``ValueError``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

from .errors import Ldr2HdrError, OutputExistsError, UnsupportedImageError

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".tif",
    ".tiff",
    ".webp",
    ".exr",
    ".hdr",
)

#: Two 16K x 8K panoramas' worth of pixels: large enough for any real photo,
#: small enough that a forged header cannot make us allocate hundreds of GB.
DEFAULT_MAX_PIXELS: int = 16384 * 8192 * 2

#: More channels than this is not a photo (and would multiply memory use).
MAX_CHANNELS = 64

#: Largest finite half-float value; brighter values would be written as inf.
HALF_MAX = 65504.0

EXR_COMPRESSIONS: tuple[str, ...] = ("none", "zip", "zips", "piz", "dwaa", "dwab", "rle", "pxr24", "b44", "b44a")

METADATA_PREFIX = "ldr2hdr:"

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class ExifInfo:
    """Camera settings read from EXIF, when the file has them.

    Attributes:
        exposure_time: shutter time in seconds, or None.
        f_number: aperture as an f-number (e.g. 2.8), or None.
        iso: sensitivity (ISO speed), or None.
        orientation: EXIF orientation 1-8 as stored in the file. The pixels of a
            :class:`LoadedImage` are already rotated/flipped upright, so callers
            must not apply it again.
    """

    exposure_time: float | None = None
    f_number: float | None = None
    iso: float | None = None
    orientation: int = 1


@dataclass(frozen=True)
class LoadedImage:
    """One decoded image.

    Attributes:
        path: the file it was read from.
        pixels: float32 ``(H, W, 3)``, top-down rows, orientation applied. Integer
            formats in [0, 1] (``value / 255`` or ``value / 65535``); float formats
            linear as stored, never clamped above (negatives are set to 0).
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


# --------------------------------------------------------------------------- reading


def _first_line(message: str, fallback: str) -> str:
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return lines[0] if lines else fallback


def _check_file(path: Path) -> None:
    """Refuse what is clearly not an image file before OpenImageIO sees it."""
    if not path.exists():
        raise UnsupportedImageError("no such file", path)
    if path.is_dir():
        raise UnsupportedImageError("is a folder, not an image file", path)
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise UnsupportedImageError(
            f"unsupported file type '{path.suffix or '(none)'}' "
            f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})",
            path,
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnsupportedImageError(f"cannot read file: {exc.strerror or exc}", path) from exc
    if size == 0:
        raise UnsupportedImageError("empty file (0 bytes)", path)
    if not os.access(path, os.R_OK):
        raise UnsupportedImageError("permission denied", path)


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


@contextlib.contextmanager
def _native_stderr_captured():
    """Capture what native decoders print straight to file descriptor 2.

    libpng and OpenEXR write their complaints to stderr themselves, which would put extra
    lines around our one-line error. The complaint also reaches us through OpenImageIO's
    error state, so the captured text is only logged at debug level. Set
    ``LDR2HDR_NATIVE_STDERR=1`` to let it through (for debugging decoders).
    """
    if os.environ.get("LDR2HDR_NATIVE_STDERR") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read(4096).decode("utf-8", "replace").strip()
            if text:
                logger.debug("decoder said: %s", text)


def read_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
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
        with _native_stderr_captured():
            data = inp.read_image(0, 0, first, last, oiio.FLOAT)
        error = inp.geterror() if inp.has_error else ""
        if data is None or error:
            message = _first_line(error, "decoder returned no pixels")
            raise UnsupportedImageError(f"corrupt or truncated file: {message}", path)
        exif = _read_exif(spec, path)
        is_hdr = spec.format.basetype in (oiio.HALF, oiio.FLOAT, oiio.DOUBLE)
        bits = _bits_of(spec)
    finally:
        inp.close()

    data = np.asarray(data, dtype=np.float32).reshape(spec.height, spec.width, last - first)
    pixels = data[..., [c - first for c in colour]]
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    alpha = None if alpha_index is None else data[..., alpha_index - first]

    if is_hdr:
        pixels = _sanitize_float(pixels, path)
    else:
        # Guards against signed integer formats, which OIIO maps to [-1, 1].
        pixels = np.clip(pixels, 0.0, 1.0)

    pixels = apply_orientation(pixels, exif.orientation).astype(np.float32, copy=False)
    if alpha is not None:
        alpha = apply_orientation(alpha, exif.orientation).astype(np.float32, copy=False)
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


# --------------------------------------------------------------------------- writing


def _prepare_destination(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise Ldr2HdrError("is a folder, cannot write an image there", path)
    if not path.parent.is_dir():
        raise Ldr2HdrError(f"output folder does not exist: {path.parent}", path)
    if not overwrite and path.exists():
        raise OutputExistsError("output file exists (use --overwrite to replace it)", path)


def _temporary_name(path: Path) -> Path:
    # Hidden and in the same folder (os.replace must not cross file systems);
    # ends with the real extension so OpenImageIO picks the right writer.
    token = secrets.token_hex(4)
    return path.with_name(f".{path.stem}.{token}.tmp{path.suffix}")


def _write_atomic(buf: oiio.ImageBuf, path: Path, dtype: Any, overwrite: bool) -> None:
    """Write ``buf`` to a temporary file, then move it over ``path``."""
    _prepare_destination(path, overwrite)
    tmp = _temporary_name(path)
    try:
        if not buf.write(str(tmp), dtype):
            message = _first_line(buf.geterror(), "unknown error")
            raise Ldr2HdrError(f"cannot write image: {message}", path)
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_without_overwrite(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _move_without_overwrite(tmp: Path, path: Path) -> None:
    # A hard link fails if the destination appeared since the first check, so
    # overwrite=False holds even against a concurrent writer.
    try:
        os.link(tmp, path)
    except FileExistsError as exc:
        raise OutputExistsError("output file exists (use --overwrite to replace it)", path) from exc
    except OSError:
        # Some file systems have no hard links: fall back to check-then-rename.
        if path.exists():
            raise OutputExistsError("output file exists (use --overwrite to replace it)", path) from None
        os.replace(tmp, path)


def _check_pixels(pixels: np.ndarray, allowed_channels: tuple[int, ...], what: str) -> np.ndarray:
    array = np.asarray(pixels)
    if array.ndim == 2 and 1 in allowed_channels:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in allowed_channels or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(
            f"{what} expects pixels of shape (H, W, C) with C in {allowed_channels}, got {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{what} expects real numeric pixels, got dtype {array.dtype}")
    return array


def _software() -> str:
    try:
        return f"ldr2hdr {version('ldr2hdr')}"
    except PackageNotFoundError:  # running from a source tree or inside Blender
        return "ldr2hdr"


def _set_metadata(spec: oiio.ImageSpec, metadata: dict[str, Any]) -> None:
    """Store metadata as EXR header attributes.

    Keys without ":" get the ``ldr2hdr:`` prefix. str/int/float values keep their
    type (floats as 32-bit EXR floats, ~7 significant digits; ints outside the
    int32 range become strings); bools become 0/1; lists, tuples, dicts and
    numpy arrays are stored as JSON strings.
    """
    for key, value in metadata.items():
        name = str(key) if ":" in str(key) else METADATA_PREFIX + str(key)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool):
            spec.attribute(name, int(value))
        elif isinstance(value, int):
            if _INT32_MIN <= value <= _INT32_MAX:
                spec.attribute(name, value)
            else:
                spec.attribute(name, str(value))
        elif isinstance(value, float):
            spec.attribute(name, value)
        elif isinstance(value, str):
            spec.attribute(name, value)
        elif value is None:
            spec.attribute(name, "")
        else:
            try:
                spec.attribute(name, json.dumps(value))
            except TypeError as exc:
                raise ValueError(f"metadata {key!r}: cannot store a {type(value).__name__}") from exc


def _compression_setting(compression: str) -> str:
    name, _, level = str(compression).lower().partition(":")
    if name not in EXR_COMPRESSIONS or (level and not level.replace(".", "", 1).isdigit()):
        raise ValueError(
            f"unknown EXR compression {compression!r} (choose from {', '.join(EXR_COMPRESSIONS)}, "
            "optionally with ':level', e.g. 'dwaa:45')"
        )
    return f"{name}:{level}" if level else name


def write_exr(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    metadata: dict[str, Any] | None = None,
    half: bool = True,
    compression: str = "zip",
    overwrite: bool = True,
) -> None:
    """Write linear HDR pixels to an OpenEXR file, atomically.

    Values are written as they are: never clamped. When ``half`` is True but a
    value exceeds the half-float maximum (65504), the file is written as 32-bit
    float instead (with a warning) rather than turning it into infinity.

    Args:
        path: destination ``.exr`` file; its folder must exist.
        pixels: float ``(H, W, 3)`` (or ``(H, W, 4)`` with alpha), linear, top-down.
        metadata: extra header attributes (see :func:`read_exr_metadata`); keys
            without ":" are prefixed with ``ldr2hdr:``.
        half: 16-bit half floats (default) or 32-bit floats.
        compression: one of :data:`EXR_COMPRESSIONS`, optionally ``name:level``.
        overwrite: when False and ``path`` exists, raise :class:`OutputExistsError`.

    Raises:
        ValueError: wrong shape/dtype, unknown compression, unstorable metadata.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        Ldr2HdrError: the file could not be written (nothing is left behind).
    """
    path = Path(path)
    array = _check_pixels(pixels, (3, 4), "write_exr").astype(np.float32, copy=False)
    setting = _compression_setting(compression)
    dtype = oiio.HALF if half else oiio.FLOAT
    if half:
        finite = array[np.isfinite(array)]
        if finite.size and float(np.abs(finite).max()) > HALF_MAX:
            logger.warning("%s: values above %g do not fit half floats; writing 32-bit floats", path, HALF_MAX)
            dtype = oiio.FLOAT
    nonfinite = int(np.count_nonzero(~np.isfinite(array)))
    if nonfinite:
        logger.warning("%s: writing %d non-finite values", path, nonfinite)

    buf = oiio.ImageBuf(np.ascontiguousarray(array))
    spec = buf.specmod()
    if array.shape[2] == 4:
        spec.channelnames = ("R", "G", "B", "A")
        spec.alpha_channel = 3
    spec.attribute("compression", setting)
    spec.attribute("Software", _software())
    _set_metadata(spec, metadata or {})
    _write_atomic(buf, path, dtype, overwrite)
    logger.info("wrote %s (%dx%d, %s, %s)", path, array.shape[1], array.shape[0], "half" if dtype == oiio.HALF else "float", setting)


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


def _to_integer(pixels: np.ndarray, bits: int) -> np.ndarray:
    scale = (1 << bits) - 1
    clean = np.nan_to_num(np.asarray(pixels, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    values = np.rint(np.clip(clean, 0.0, 1.0) * scale)
    return values.astype(np.uint8 if bits == 8 else np.uint16)


def write_png(
    path: str | os.PathLike, pixels: np.ndarray, *, bits: int = 8, overwrite: bool = True
) -> None:
    """Write display-referred pixels to a PNG file, atomically.

    Args:
        path: destination ``.png`` file; its folder must exist.
        pixels: ``(H, W, 3)`` in [0, 1] (also ``(H, W)``, ``(H, W, 1)`` gray or
            ``(H, W, 4)`` RGBA). Values are clipped to [0, 1] and rounded to the
            nearest code value; NaN is written as 0.
        bits: 8 or 16 bits per sample.
        overwrite: when False and ``path`` exists, raise :class:`OutputExistsError`.
    """
    if bits not in (8, 16):
        raise ValueError(f"write_png supports 8 or 16 bits, got {bits}")
    array = _check_pixels(pixels, (1, 3, 4), "write_png")
    buf = oiio.ImageBuf(np.ascontiguousarray(_to_integer(array, bits)))
    # PNG alpha is straight; without this OIIO would divide colour by alpha.
    buf.specmod().attribute("oiio:UnassociatedAlpha", 1)
    _write_atomic(buf, Path(path), oiio.UINT8 if bits == 8 else oiio.UINT16, overwrite)


def write_jpeg(
    path: str | os.PathLike, pixels: np.ndarray, *, quality: int = 90, overwrite: bool = True
) -> None:
    """Write display-referred pixels to a JPEG file, atomically.

    Args:
        path: destination ``.jpg``/``.jpeg`` file; its folder must exist.
        pixels: ``(H, W, 3)`` in [0, 1] (also ``(H, W)`` / ``(H, W, 1)`` gray);
            clipped to [0, 1] and rounded to 8 bits.
        quality: JPEG quality 1-100.
        overwrite: when False and ``path`` exists, raise :class:`OutputExistsError`.
    """
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be 1-100, got {quality}")
    array = _check_pixels(pixels, (1, 3), "write_jpeg")
    buf = oiio.ImageBuf(np.ascontiguousarray(_to_integer(array, 8)))
    buf.specmod().attribute("compression", f"jpeg:{int(quality)}")
    _write_atomic(buf, Path(path), oiio.UINT8, overwrite)


# --------------------------------------------------------------------------- inputs


def list_inputs(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand command-line inputs into image files.

    Files are kept as given (in order, even with an unsupported extension, so
    :func:`read_image` can report them). Folders are expanded non-recursively to
    their files with a supported extension (case-insensitive), sorted by name;
    hidden files (starting with ".", e.g. our own temporary files) are skipped.

    Raises:
        UnsupportedImageError: a path does not exist.
    """
    result: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                child
                for child in path.iterdir()
                if not child.name.startswith(".")
                and child.suffix.lower() in SUPPORTED_EXTENSIONS
                and child.is_file()
            )
            if not found:
                logger.warning("%s: folder has no supported images", path)
            result.extend(found)
        elif path.exists():
            result.append(path)
        else:
            raise UnsupportedImageError("no such file or folder", path)
    return result
