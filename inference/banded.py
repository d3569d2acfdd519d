"""``reconstruct`` of a large image in row bands: the memory of a band plus low-resolution arrays.

:func:`.pipeline.run` holds the decoded input, the linear image and the soft mask while the
highlights are restored (1.6 + 1.6 + 0.5 GB for a 16384x8192 panorama). Here only the decoded
8/16-bit codes (0.4 GB at 16384x8192) and the map of clipped pixels (0.13 GB) are whole; every
float image exists one row band at a time, linearized again from the codes when a pass needs it:

1. the curve estimate (from the codes, as :func:`.pipeline.run` does from their floats), then
   one pass for what needs the whole image: the energy step's view of the clipped pixels
   (:class:`.highlights.energy.ClippedScene`: the clipped map, the linear values there, and the
   sources, whose own pass over the bands :func:`.highlights.sources.find_sources` makes), the
   highlight network's area-downsampled input (images this large always run the network at a
   fraction of their size, :func:`.highlights.learned.network_factor`) and the match-photo
   scale;
2. the network at low resolution; the restored values of the clipped pixels (only the bands
   that hold some); the energy step on them;
3. the output: each band linearized, restored, its clipped pixels replaced by their rescaled
   values, scaled, and written as EXR scanlines (:func:`.io.write_exr_bands`).

The pixels, sources and metadata are those of ``pipeline.run(keep_intermediates=False)``
(``tests/inference/test_pipeline_memory.py``), dequantization included (a band is
dequantized with its halo of rows, which gives the same rows). Without dequantization (the
default above 16 MP) the curve is one lookup per code value, so a pass costs little.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from . import crf, pipeline
from .crf.dequantize import dequantize, halo_rows, soft_saturation_mask
from .errors import Ldr2HdrError
from .imaging import unit_float

logger = logging.getLogger(__name__)

#: Rows per band (the whole-image path blends in bands of 256 rows too).
BAND_ROWS = 256
#: Smaller images take :func:`.pipeline.run`: at most ~1.8 GB, and it dequantizes once where
#: the bands would dequantize each pass.
MIN_PIXELS = 16_000_000


def applies(height: int, width: int, settings: pipeline.Settings, steps: str = "reconstruct") -> bool:
    """Whether :func:`reconstruct` takes an image of ``height`` x ``width`` (else :func:`.pipeline.run`)."""
    if steps not in ("restore", "reconstruct") or settings.method != "learned" or height * width <= MIN_PIXELS:
        return False
    from .highlights.learned import network_factor

    return network_factor(height, width) > 1


class _Bands:
    """Rows of an image that is never whole, made from its codes on demand. What depends on a
    pixel's code alone (the soft mask and the clipped test on its largest channel; the linear
    value when nothing is dequantized) is looked up in tables made by the very functions the
    whole-image path applies, so the values are the same."""

    def __init__(self, codes: np.ndarray, inv: crf.InverseCRF, settings: pipeline.Settings):
        from .highlights import sources as srcs

        self.codes = codes
        self.height, self.width = codes.shape[:2]
        self.inv = inv
        levels = np.repeat(unit_float(np.arange(np.iinfo(codes.dtype).max + 1, dtype=codes.dtype))[:, None], 3, axis=1)
        self.mask_table = soft_saturation_mask(levels, settings.mask_threshold)
        self.clipped_table = srcs.clipped_pixels(levels)
        self.linear_table = None
        if not settings.dequantizes(self.height, self.width):
            # without dequantization the curve sees only the code values: look each one up once
            self.linear_table = [np.ascontiguousarray(t) for t in crf.linearize(levels[None], inv)[0].T]

    def ldr(self, r0: int, r1: int) -> np.ndarray:
        """LDR rows ``r0:r1``, float32 ``(r1 - r0, W, 3)`` in [0, 1]."""
        return unit_float(self.codes[r0:r1])

    def linear(self, r0: int, r1: int) -> np.ndarray:
        """Linearized rows ``r0:r1`` (dequantized first when the settings say so), float32 ``(r1 - r0, W, 3)``."""
        if self.linear_table is not None:
            codes = self.codes[r0:r1]
            out = np.empty(codes.shape, np.float32)
            for c in range(3):
                out[..., c] = np.take(self.linear_table[c], codes[..., c])
            return out
        halo = halo_rows()
        a, b = max(0, r0 - halo), min(self.height, r1 + halo)
        return crf.linearize(dequantize(unit_float(self.codes[a:b]))[r0 - a:r1 - a], self.inv)

    def top_codes(self, r0: int, r1: int) -> np.ndarray:
        """The largest channel's code of rows ``r0:r1``, ``(r1 - r0, W)``."""
        c = self.codes[r0:r1]
        return np.maximum(np.maximum(c[..., 0], c[..., 1]), c[..., 2])

    def mask(self, r0: int, r1: int) -> np.ndarray:
        """:func:`.crf.dequantize.soft_saturation_mask` of rows ``r0:r1``."""
        return np.take(self.mask_table, self.top_codes(r0, r1))

    def clipped(self, r0: int, r1: int) -> np.ndarray:
        """:func:`.highlights.sources.clipped_pixels` of rows ``r0:r1``."""
        return np.take(self.clipped_table, self.top_codes(r0, r1))


class _RowView:
    """``view[r0:r1]`` of rows computed by ``compute(r0, r1)``, for code that reads an image
    band by band (:func:`.highlights.sources.find_sources`)."""

    def __init__(self, shape: tuple, compute: Callable[[int, int], np.ndarray]):
        self.shape = shape
        self._compute = compute

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError(f"only row slices of this image can be read, not {key!r}")
        return self._compute(*key.indices(self.shape[0])[:2])


class _ClippedPixels:
    """The restored image where the energy step reads and writes it: its clipped pixels only,
    ``(N, 3)`` in raster order, indexed as the ``H x W x 3`` image by ``[rows, cols]`` arrays."""

    def __init__(self, values: np.ndarray, clipped: np.ndarray):
        self.values = values
        self.flat = np.flatnonzero(clipped)
        self.shape = (*clipped.shape, 3)

    def _index(self, key) -> np.ndarray:
        rows, cols = key
        want = np.asarray(rows, np.int64) * self.shape[1] + np.asarray(cols, np.int64)
        idx = np.searchsorted(self.flat, want)
        if idx.size and (int(idx.max()) >= len(self.flat) or not np.array_equal(self.flat[idx], want)):
            raise IndexError("the energy step reached past the clipped pixels")
        return idx

    def __getitem__(self, key) -> np.ndarray:
        return self.values[self._index(key)]

    def __setitem__(self, key, value) -> None:
        self.values[self._index(key)] = value


@dataclass
class Reconstruction:
    """What :func:`reconstruct` made before the output pass: ``result`` (``hdr`` None) and
    :meth:`bands`, the output's rows (call it for each write; it linearizes again)."""

    result: pipeline.Result
    height: int
    width: int
    bands_fn: Callable[[], Iterator[np.ndarray]]
    #: The largest output value (``np.max`` of the image), known once :meth:`bands` has run.
    max_value: float = float("nan")

    def bands(self) -> Iterator[np.ndarray]:
        """The HDR image, float32 ``(n, W, 3)`` row bands top to bottom (the output's units)."""
        peak = None
        for band in self.bands_fn():
            top = np.max(band)
            peak = top if peak is None else np.maximum(peak, top)
            yield band
        self.max_value = float(peak)


def reconstruct(codes: np.ndarray, settings: pipeline.Settings = pipeline.Settings(), *, exif=None,
                progress: Callable[[float, str], None] | None = None, band_rows: int = BAND_ROWS) -> Reconstruction:
    """``pipeline.run(ldr, settings, keep_intermediates=False)`` of a large image, in row bands.

    Args:
        codes: uint8 or uint16 ``HxWx3``, top-down rows, as decoded (``io.read_image(codes=True)``);
            the LDR image is :func:`.imaging.unit_float` of it.
        settings: the learned method (:func:`applies`).
        exif: as for :func:`.pipeline.run`.
        progress: ``progress(fraction, message)``.
        band_rows: rows per band (tests make it small).

    Returns:
        :class:`Reconstruction`: the result without the image, and the image's row bands
        (write them with :func:`.io.write_exr_bands`); ``codes`` must stay unchanged until then.
    """
    from .highlights import energy, learned
    from .highlights import sources as srcs
    from .lighting import units

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    codes = np.asarray(codes)
    if codes.ndim != 3 or codes.shape[2] != 3 or codes.dtype not in (np.uint8, np.uint16) or min(codes.shape[:2]) < 1:
        raise Ldr2HdrError(f"expected HxWx3 8/16-bit codes, got {codes.dtype} {codes.shape}")
    if settings.method != "learned":
        raise Ldr2HdrError("the banded reconstruction runs the learned method only")
    h, w = codes.shape[:2]
    wrap = pipeline.is_panorama(codes.shape, settings.panorama)
    report(0.0, "estimating the camera curve")
    inv = pipeline.estimate_crf(codes, settings, exif)
    image = _Bands(codes, inv, settings)

    # pass 1: what needs the whole image, at low resolution or at the clipped pixels
    report(0.1, "linearizing")
    f = learned.network_factor(h, w)
    if f < 2:
        raise Ldr2HdrError(f"a {w} x {h} image runs the network at full size: use pipeline.run")
    step = f * max(1, band_rows // f)  # whole blocks of the downsampling
    small_lin = np.empty((-(-h // f), -(-w // f), 3), np.float32)
    small_mask = np.empty(small_lin.shape[:2], np.float32)
    clipped = np.zeros((h, w), bool)
    clipped_linear, mid_tones, n_mid = [], [], 0
    any_mask = False
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        linear, mask = image.linear(r0, r1), image.mask(r0, r1)
        any_mask = any_mask or bool(mask.any())
        clipped[r0:r1] = image.clipped(r0, r1)
        clipped_linear.append(linear[clipped[r0:r1]])
        small_lin[r0 // f:-(-r1 // f)], small_mask[r0 // f:-(-r1 // f)] = learned.area_downsample(linear, mask, f)
        if settings.scale == "match-photo":
            n, ratios = units.mid_tone_log_ratios(image.ldr(r0, r1), linear)
            n_mid += n
            mid_tones.append(ratios)
    n_clipped = int(np.count_nonzero(clipped))
    meta = pipeline.run_metadata(settings, inv, codes.shape, n_clipped / (h * w), exif)
    result = pipeline.Result(inverse_crf=inv, metadata=meta)
    if settings.scale == "match-photo":
        measured = (units.scale_from_log_ratios(n_mid, np.concatenate(mid_tones)), "match-photo",
                    units.UNITS["match-photo"])
    else:
        measured = units.output_scale(settings.scale, None, None, exif)  # no pixels needed
    scale = np.float32(pipeline.record_scale(settings, measured, meta, result.notes))
    del mid_tones
    scene = None
    if pipeline.energy_runs(settings):
        sources = srcs.find_sources(_RowView((h, w, 3), image.linear), _RowView((h, w, 3), image.ldr), wrap, clipped)
        scene = energy.ClippedScene(clipped, sources, np.concatenate(clipped_linear))
    del clipped_linear

    # pass 2: the network at low resolution, the restored clipped pixels, the energy step
    report(0.2, "restoring highlights")
    device = pipeline.torch_device(settings.device)
    increase = None
    if any_mask:
        delta = learned.network_log_increase(
            small_lin, small_mask, panorama=wrap, tile_size=settings.tile_size, device=device,
            weights=pipeline.weights_file(settings, "highlight_net.safetensors"), precision=settings.precision,
            progress=lambda frac: report(0.2 + 0.6 * frac, "restoring highlights"))
        increase = learned.LogIncrease(delta, h, w, f, wrap)
        del delta
    del small_lin, small_mask

    def hdr_rows(r0: int, r1: int) -> np.ndarray:
        linear = image.linear(r0, r1)
        if increase is None:
            return linear
        return learned.blend_rows(linear, image.mask(r0, r1), increase.rows(r0, r1), device)

    restored = None  # the restored clipped pixels, raster order, after the energy step
    ceiling = None  # how bright an unclipped pixel may be (energy.cap_unclipped)
    if scene is not None and scene.sources.count:
        report(0.8, "estimating the energy of the light sources")
        restored = np.empty((n_clipped, 3), np.float32)
        k = 0
        for r0 in range(0, h, band_rows):
            r1 = min(h, r0 + band_rows)
            here = clipped[r0:r1]
            n = int(np.count_nonzero(here))
            if n:
                restored[k:k + n] = hdr_rows(r0, r1)[here]
                k += n
        _, result.sources = pipeline.restore_energy(_ClippedPixels(restored, clipped), None, None, settings,
                                                    float(scale), scene=scene)
        if result.sources:
            meta["sources"] = result.sources
            ceiling = energy.clipped_ceiling(_ClippedPixels(restored, clipped), clipped, scene.sources)
    del scene

    # pass 3 (when the caller writes): the output rows
    def bands() -> Iterator[np.ndarray]:
        k = 0
        for r0 in range(0, h, band_rows):
            r1 = min(h, r0 + band_rows)
            out = hdr_rows(r0, r1)
            if restored is not None:
                here = clipped[r0:r1]
                n = int(np.count_nonzero(here))
                out[here] = restored[k:k + n]
                k += n
                if ceiling is not None:
                    energy.cap_unclipped(out, clipped, ceiling, row0=r0)
            yield out * scale if scale != 1 else out

    report(1.0, "done")
    return Reconstruction(result, h, w, bands)
