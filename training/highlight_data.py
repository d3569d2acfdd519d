"""Training samples for the highlight network, synthesized from the TRAIN split HDRs.

Every sample is what the pipeline would hand the network, plus the truth:

* ``linear`` (3, S, S): the linearized LDR input (relative radiance, clip level 1);
* ``mask`` (1, S, S): :func:`crf.dequantize.soft_saturation_mask` of the LDR pixels;
* ``target`` (3, S, S): the true radiance on the same scale;
* ``weight`` (1, S, S): pixel solid angle (relative; 1 for flat crops);
* ``labels`` (S, S) int32: connected clipped regions (0 = none), for the energy loss.

Camera simulation (HDRCNN / SingleHDR recipes, docs/REFERENCES.md): exposure so 2-15 %
of pixels clip, optional signal-dependent noise, a camera curve (sRGB, a random gamma, the
HDRCNN sigmoid, or a curve of the CRF training recipe), 8-bit rounding, sometimes JPEG
(quality 60-100), then the pipeline's own steps: dequantization and the inverse curve the
learned CRF estimator finds in the LDR image (or an sRGB decode with a slightly perturbed
exponent): the network learns on inputs linearized the way it will meet them. The truth is aligned to the
input with the evaluation's alignment (median log ratio over well-exposed unclipped
pixels), so a curve mismatch does not teach the network a wrong global scale.

Views: perspective crops reprojected from the panoramas (random yaw, pitch, field of
view; rendered at 2x and box-filtered so a small sun keeps its energy), crops of the flat
photos at random scales, and whole panoramas downsampled to 512x256 (or the widths of
``train_highlights.py --pano-sizes``) with a random yaw roll (these train the panorama wrap
mode and the sun's energy in context). Half of the
crops are chosen among several candidates for their bright, textured clipped content.

Light sources (``train_highlights.py --light-sources P``, off for the committed weights): a
fraction P of the stage-2 samples get 1-3 synthetic suns, lamps or windows with a
veiling-glare halo added to the linear view before the camera (:func:`add_light_sources`):
the TRAIN split has few intense sources for the network to learn their energy from.

Rendered panoramas (``train_highlights.py --renders DIR --render-fraction P``, off for the
committed weights): :func:`load_renders` reads the scenes of training/render_scenes.py, and a
fraction P of the panorama draws (whole panoramas and perspective crops) come from them; their
suns and lamps light the scene around them, which pasted sources do not.

Stage-1 (inpainting) samples use random soft blob masks on log images instead.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
HDR_ROOT = SHARED / "data" / "hdr"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ldr2hdr.evaluation import synth  # noqa: E402
from ldr2hdr.inference import pipeline  # noqa: E402
from ldr2hdr.inference.crf.dequantize import dequantize, soft_saturation_mask  # noqa: E402
from ldr2hdr.inference.imaging import luminance  # noqa: E402
from ldr2hdr.inference.io import read_image  # noqa: E402
import split  # noqa: E402

logger = logging.getLogger(__name__)

CROP = 128
PANO_SIZE = (256, 512)
FLAT_MAX_SIDE = 768


@dataclass
class Reference:
    name: str
    pixels: np.ndarray  # float32 HxWx3, >= 0, finite
    panorama: bool
    rendered: bool = False  # a synthetic scene of training/render_scenes.py, not a real capture


def _area_resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    return F.adaptive_avg_pool2d(t, (h, w))[0].permute(1, 2, 0).contiguous().numpy()


def _read_radiance(path: Path) -> np.ndarray:
    """RGB float32 radiance of an HDR file, negatives and non-finite values set to 0."""
    px = read_image(path).pixels[..., :3]
    return np.nan_to_num(np.maximum(px, 0.0), nan=0.0, posinf=0.0).astype(np.float32)


def load_references(root: Path = HDR_ROOT) -> list[Reference]:
    """The TRAIN split (never an evaluation file), panoramas at <= 1024x512, flats <= 768 px."""
    refs = []
    for path in split.train_files(root):
        assert not split.is_eval(path), path
        px = _read_radiance(path)
        h, w = px.shape[:2]
        pano = pipeline.is_panorama(px.shape)
        if pano and w > 1024:
            px = _area_resize(px, 512, 1024)
        elif not pano and max(h, w) > FLAT_MAX_SIDE:
            s = FLAT_MAX_SIDE / max(h, w)
            px = _area_resize(px, round(h * s), round(w * s))
        refs.append(Reference(path.name, px, pano))
    if not refs:
        raise SystemExit(f"no training HDRs found under {root}")
    return refs


def load_renders(folder: Path) -> list[Reference]:
    """Panoramas rendered by training/render_scenes.py (``render_*.exr`` in ``folder``).

    Renders are 2:1 by construction; a file that does not decode is skipped with a warning
    (a render interrupted mid-write is never under its final name, but be safe)."""
    refs = []
    for path in sorted(Path(folder).glob("render_*.exr")):
        try:
            px = _read_radiance(path)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop a training run
            logger.warning("skipping %s: %s", path, exc)
            continue
        if not pipeline.is_panorama(px.shape) or float(px.max()) <= 0:
            logger.warning("skipping %s: not a 2:1 panorama with light", path)
            continue
        refs.append(Reference(path.name, px, True, rendered=True))
    return refs


# ----------------------------------------------------------------------------- views


def perspective_view(pano: np.ndarray, size: int, yaw: float, pitch: float, fov_deg: float) -> np.ndarray:
    """Pinhole view ``size x size`` of an equirect map (row 0 = zenith), rendered at 2x then
    box-filtered (energy of small bright sources is kept). Angles in radians / degrees."""
    h, w = pano.shape[:2]
    n = 2 * size
    t = math.tan(math.radians(fov_deg) / 2)
    u = (np.arange(n) + 0.5) / n * 2 - 1
    uu, vv = np.meshgrid(u * t, -u * t)
    d = np.stack([uu, vv, -np.ones_like(uu)], axis=-1).astype(np.float32)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    cp, sp = math.cos(pitch), math.sin(pitch)
    # pitch (looking up is positive) rotates about the x axis; the camera looks along -z
    y = d[..., 1] * cp - d[..., 2] * sp
    z = d[..., 1] * sp + d[..., 2] * cp
    x = d[..., 0]
    lon = np.arctan2(x, -z) + yaw
    lat = np.arcsin(np.clip(y, -1, 1))
    col = ((lon + math.pi) / (2 * math.pi) % 1.0) * w - 0.5
    row = np.clip((math.pi / 2 - lat) / math.pi * h - 0.5, 0, h - 1)
    c0 = np.floor(col).astype(np.int64)
    r0 = np.floor(row).astype(np.int64)
    fc = (col - c0)[..., None]
    fr = (row - r0)[..., None]
    c0m, c1m = c0 % w, (c0 + 1) % w
    r1 = np.minimum(r0 + 1, h - 1)
    img = ((1 - fr) * ((1 - fc) * pano[r0, c0m] + fc * pano[r0, c1m])
           + fr * ((1 - fc) * pano[r1, c0m] + fc * pano[r1, c1m]))
    return img.reshape(size, 2, size, 2, 3).mean(axis=(1, 3)).astype(np.float32)


def flat_crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    s = rng.uniform(max(size / min(h, w), 0.35), 1.0)
    hh, ww = max(size, round(h * s)), max(size, round(w * s))
    small = _area_resize(img, hh, ww) if (hh, ww) != (h, w) else img
    y, x = rng.integers(0, hh - size + 1), rng.integers(0, ww - size + 1)
    out = small[y:y + size, x:x + size]
    return out[:, ::-1].copy() if rng.random() < 0.5 else out.copy()


def pano_view(pano: np.ndarray, rng: np.random.Generator, size: tuple[int, int] = PANO_SIZE) -> np.ndarray:
    """The whole panorama area-downsampled to ``size`` (rows, columns), rolled by a random yaw, maybe mirrored."""
    small = _area_resize(pano, *size)
    small = np.roll(small, int(rng.integers(0, size[1])), axis=1)
    return small[:, ::-1].copy() if rng.random() < 0.5 else small


def highlight_score(img: np.ndarray, fraction: float) -> float:
    """How much a view has to teach: the log range of its would-be clipped pixels."""
    peak = img.max(axis=-1)
    q = np.quantile(peak, 1 - fraction)
    top = peak[peak >= q]
    if q <= 0 or top.size == 0:
        return -1.0
    return float(np.log(top.max() / q + 1e-6) + np.std(np.log(top + 1e-8)))


# ----------------------------------------------------------------------------- camera


def curve_bank():
    """The measured/random training curves of the CRF recipe (training/crf_curves.py), loaded once."""
    import crf_curves

    return crf_curves.shared_bank()


def camera_ldr(sensor: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Sensor values (clip level 1) -> 8-bit LDR pixels in [0, 1] through a random curve/codec.

    Curves: sRGB 45 %, a random gamma 10 %, the HDRCNN sigmoid 10 %, and 35 % a curve of the
    CRF training recipe (DoRF training split, darktable, NUS, random film/log curves; never
    a DoRF test curve or a Blender view).
    """
    if rng.random() < 0.3:
        sigma = rng.uniform(0.0, 0.01)
        sensor = sensor + sigma * np.sqrt(np.maximum(sensor, 0)) * rng.standard_normal(sensor.shape)
    x = np.clip(sensor, 0.0, 1.0)
    r = rng.random()
    if r < 0.45:
        disp, curve = synth.srgb_encode(x), "srgb"
    elif r < 0.55:
        g = rng.uniform(1.8, 2.6)
        disp, curve = x ** (1.0 / g), f"gamma{g:.2f}"
    elif r < 0.65:
        n = float(np.clip(rng.normal(0.9, 0.1), 0.6, 1.2))
        s = float(np.clip(rng.normal(0.6, 0.1), 0.3, 0.9))
        xn = x ** n
        disp, curve = (1 + s) * xn / (xn + s), "sigmoid"
    else:
        import crf_data

        inv, curve = curve_bank().sample(rng)
        disp = crf_data.apply_forward(x, inv).astype(np.float32)
    if rng.random() < 0.3:
        ldr = synth.encode_jpeg(disp, int(rng.integers(60, 101)))
        curve += "+jpeg"
    else:
        ldr = synth.quantize_png8(disp)
    return ldr.astype(np.float32), curve


def linearize_like_pipeline(ldr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Linearize as the pipeline does: 65 % of the time with the curve the learned CRF
    estimator (the installed weights/crf_net.safetensors) finds in this LDR image, as the
    default ``--method learned`` does; otherwise the sRGB decode with a slightly wrong
    exponent (``--crf srgb`` on a camera that is not quite sRGB). Both after dequantization."""
    deq = dequantize(ldr)
    if rng.random() < 0.65:
        from ldr2hdr.inference import crf
        from ldr2hdr.inference.crf.network import estimate_crf_learned

        return crf.linearize(deq, estimate_crf_learned(ldr)).astype(np.float32)
    return (synth.srgb_decode(deq) ** rng.uniform(0.92, 1.08)).astype(np.float32)


def align_truth(target: np.ndarray, linear: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scale the truth so it agrees with the input where the input is reliable (eval alignment)."""
    yl = luminance(linear)
    yt = luminance(target)
    ok = (mask <= 0) & (yl > 1e-4) & (yt > 0)
    if ok.sum() < 16:
        return target
    lo, hi = np.quantile(yt[ok], [0.05, 0.95])
    ok &= (yt >= lo) & (yt <= hi)
    if ok.sum() < 16:
        return target
    return (target * np.exp(np.median(np.log(yl[ok]) - np.log(yt[ok])))).astype(np.float32)


def region_labels(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    labels, _ = ndimage.label(mask > 0, structure=np.ones((3, 3)))
    return labels.astype(np.int32)


def solid_angle_weights(h: int, w: int) -> np.ndarray:
    lat = math.pi / 2 - (np.arange(h) + 0.5) * math.pi / h
    return np.repeat(np.cos(lat)[:, None], w, axis=1).astype(np.float32)


def add_light_sources(view: np.ndarray, rng: np.random.Generator, *, panorama: bool) -> np.ndarray:
    """Add 1-3 synthetic light sources to a linear view (returns a new array).

    The TRAIN split has few intense sources: measured on it, the true energy of the clipped
    regions is 0.5-3 stops above the clipped input for 29 of 33 references, while suns and
    lamps are 4-8 stops above. The network then learns that clipped means "a bit brighter".
    Each source is either a small disc (sun, bulb: radius 0.5-6 px, 4-13 stops above the
    view's 98th percentile) or a rectangle (window, softbox: up to 1/6 of the view, 1.5-6
    stops), with a veiling-glare halo ``L * a / (1 + (d / (s r))^2)^1.5`` of random strength
    (a = 1e-3..3e-2) around it, as lens scatter and the atmosphere put around real sources;
    colour from neutral to warm. The halo is unclipped input the network can read.
    """
    h, w = view.shape[:2]
    out = view.astype(np.float32, copy=True)
    q = float(np.quantile(view.max(axis=-1), 0.98))
    if not q > 0:
        return out
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(int(rng.integers(1, 4))):
        cy = rng.uniform(0.12 * h, 0.6 * h) if panorama else rng.uniform(0, h)
        cx = rng.uniform(0, w)
        tint = np.exp(np.array([0.08, 0.0, -0.12]) * rng.uniform(0, 2.5) + rng.normal(0, 0.04, 3)).astype(np.float32)
        dx = xx - cx
        if panorama:
            dx = (dx + w / 2) % w - w / 2
        d = np.sqrt(dx * dx + (yy - cy) ** 2)
        if rng.random() < 0.7:  # disc: sun, bulb
            r = float(np.exp(rng.uniform(math.log(0.5), math.log(6.0))))
            radiance = q * 2.0 ** rng.uniform(4.0, 13.0)
            core = np.clip(r + 0.5 - d, 0.0, 1.0)
        else:  # rectangle: window, softbox
            r = float(rng.uniform(2.0, max(2.5, min(h, w) / 6)))
            a = rng.uniform(0.4, 1.0)
            radiance = q * 2.0 ** rng.uniform(1.5, 6.0)
            core = (np.clip(r + 0.5 - np.abs(dx), 0, 1) * np.clip(r * a + 0.5 - np.abs(yy - cy), 0, 1))
        halo = 10.0 ** rng.uniform(-3.0, -1.5) / (1.0 + (d / (rng.uniform(1.5, 4.0) * r)) ** 2) ** 1.5
        out += (radiance * np.maximum(core, halo))[..., None] * tint
    return out


def make_sample(view: np.ndarray, rng: np.random.Generator, *, panorama: bool, fraction: float | None = None,
                light_sources: float = 0.0) -> dict:
    """Simulate the camera + pipeline on a linear view ``HxWx3``; returns CHW float32 arrays.

    ``light_sources``: probability of adding synthetic sources first (:func:`add_light_sources`)."""
    if light_sources and rng.random() < light_sources:
        view = add_light_sources(view, rng, panorama=panorama)
    fraction = rng.uniform(0.02, 0.15) if fraction is None else fraction
    k = synth.exposure_for_clip_fraction(view, fraction)
    sensor = view * k
    ldr, _ = camera_ldr(sensor, rng)
    linear = linearize_like_pipeline(ldr, rng)
    mask = soft_saturation_mask(ldr)
    target = align_truth(sensor.astype(np.float32), linear, mask)
    h, w = mask.shape
    weight = solid_angle_weights(h, w) if panorama else np.ones((h, w), np.float32)
    return {
        "linear": linear.transpose(2, 0, 1).copy(),
        "mask": mask[None].astype(np.float32),
        "target": target.transpose(2, 0, 1).copy(),
        "weight": weight[None],
        "labels": region_labels(mask),
    }


def random_blob_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Soft random blobs covering 3-25 % of the image (stage-1 inpainting masks)."""
    noise = rng.standard_normal((1, 1, h // 8 + 2, w // 8 + 2)).astype(np.float32)
    field = F.interpolate(torch.from_numpy(noise), size=(h, w), mode="bicubic", align_corners=False)[0, 0].numpy()
    cover = rng.uniform(0.03, 0.25)
    t = np.quantile(field, 1 - cover)
    return np.clip((field - t) / 0.3 + 0.5, 0.0, 1.0).astype(np.float32) * (field > t - 0.15)


def make_inpaint_sample(view: np.ndarray, rng: np.random.Generator, *, panorama: bool) -> dict:
    """Stage 1: the truth is the view (scaled so its 90th percentile is 0.5); inside random
    soft blobs the input is flat at the clip level, as if clipped."""
    peak = view.max(axis=-1)
    scale = 0.5 / max(float(np.quantile(peak, 0.9)), 1e-8)
    truth = (view * scale).astype(np.float32)
    h, w = peak.shape
    mask = random_blob_mask(h, w, rng)
    base = np.minimum(truth, 1.0)
    linear = (base * (1 - mask[..., None]) + mask[..., None]).astype(np.float32)
    weight = solid_angle_weights(h, w) if panorama else np.ones((h, w), np.float32)
    return {
        "linear": linear.transpose(2, 0, 1).copy(),
        "mask": mask[None],
        "target": truth.transpose(2, 0, 1).copy(),
        "weight": weight[None],
        "labels": region_labels(mask),
    }


class SamplePool:
    """A pool of pre-generated samples, refreshed a few at a time between steps."""

    def __init__(self, refs: list[Reference], rng: np.random.Generator, *, kind: str, size: int, stage: int,
                 light_sources: float = 0.0, render_fraction: float = 0.0,
                 pano_size: tuple[int, int] = PANO_SIZE):
        self.pano_size = pano_size  # (rows, columns) of whole-panorama samples (kind "pano")
        self.refs = [r for r in refs if not r.rendered]
        self.rng = rng
        self.light_sources = light_sources
        self.kind = kind  # "crop" or "pano"
        self.stage = stage
        self.panos = [r for r in self.refs if r.panorama]
        self.renders = [r for r in refs if r.rendered]
        # share of the panorama draws (whole panoramas and perspective crops) taken from renders
        self.render_fraction = render_fraction if self.renders else 0.0
        self.items = [self._new() for _ in range(size)]

    def _pano(self) -> Reference:
        rng = self.rng
        if self.render_fraction and rng.random() < self.render_fraction:
            return self.renders[rng.integers(len(self.renders))]
        return self.panos[rng.integers(len(self.panos))]

    def _view(self) -> tuple[np.ndarray, bool]:
        rng = self.rng
        if self.kind == "pano":
            return pano_view(self._pano().pixels, rng, self.pano_size), True
        candidates = 4 if rng.random() < 0.5 else 1
        if rng.random() < 0.7:
            ref = self._pano()
            params = [(rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(-35, 65)), rng.uniform(45, 110))
                      for _ in range(candidates)]
            if candidates > 1:
                # score cheap 32-pixel previews; render only the chosen view at full size
                params.sort(key=lambda p: highlight_score(perspective_view(ref.pixels, 32, *p), 0.08), reverse=True)
            return perspective_view(ref.pixels, CROP, *params[0]), False
        flats = [r for r in self.refs if not r.panorama]
        views = [flat_crop(flats[rng.integers(len(flats))].pixels, CROP, rng) for _ in range(candidates)]
        if len(views) > 1:
            views.sort(key=lambda v: highlight_score(v, 0.08), reverse=True)
        return views[0], False

    def _new(self) -> dict:
        for _ in range(20):
            view, pano = self._view()
            if float(view.max()) <= 0:
                continue
            try:
                if self.stage == 1:
                    return make_inpaint_sample(view, self.rng, panorama=pano)
                return make_sample(view, self.rng, panorama=pano, light_sources=self.light_sources)
            except ValueError:
                continue  # e.g. a black view: no exposure clips it
        raise RuntimeError("could not make a training sample")

    def refresh(self, n: int) -> None:
        for _ in range(n):
            self.items[self.rng.integers(len(self.items))] = self._new()

    def batch(self, n: int) -> dict[str, torch.Tensor]:
        idx = self.rng.choice(len(self.items), size=n, replace=False)
        out = {}
        for key in ("linear", "mask", "target", "weight"):
            out[key] = torch.from_numpy(np.stack([self.items[i][key] for i in idx]))
        out["labels"] = torch.from_numpy(np.stack([self.items[i]["labels"] for i in idx]).astype(np.int64))
        return out
