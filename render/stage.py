"""The relighting scene's fixed layout, and what is measured on its renders (numpy only, no bpy).

The scene, in Blender's world axes (metres, +Z up): a white diffuse sphere and a glossy metal
sphere of radius :data:`RADIUS` resting side by side on a large white ground plane at ``z = 0``,
seen from a fixed camera a few metres away, slightly from above. :mod:`.relight` builds it in
Blender from these numbers; this module traces the same geometry analytically, so the masks and
the shadow line below match the render without reading anything back from Blender.

Images are float32 ``HxWx3`` linear arrays, top-down rows; image coordinates ``(x, y)`` are in
pixels from the top-left corner (pixel ``(row, col)`` covers ``[col, col + 1] x [row, row + 1]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..inference.crf import linear_to_srgb
from ..inference.imaging import REC709_Y

RADIUS = 0.5
DIFFUSE_CENTRE = np.array([-0.65, 0.0, RADIUS])
GLOSSY_CENTRE = np.array([0.65, 0.0, RADIUS])
GROUND_HALF_SIZE = 40.0  # the camera's view ends on the ground, never on the map's horizon
CAMERA_LOCATION = np.array([0.0, -4.6, 3.6])
CAMERA_TARGET = np.array([0.0, -0.3, 0.3])
LENS_MM = 50.0
SENSOR_MM = 36.0  # spans the image width (sensor fit HORIZONTAL)
ASPECT = 0.75  # panel height / width

DIFFUSE_ALBEDO = 0.8
GROUND_ALBEDO = 0.8
GLOSSY_COLOR = 0.9
GLOSSY_ROUGHNESS = 0.1

NOTHING, GROUND, DIFFUSE, GLOSSY = 0, 1, 2, 3
SPHERES = {DIFFUSE: DIFFUSE_CENTRE, GLOSSY: GLOSSY_CENTRE}
SPHERE_NAMES = {DIFFUSE: "diffuse", GLOSSY: "glossy"}

#: 10-90 % width of the logistic step ``1 / (1 + exp(-x / k))`` is ``2 ln 9 k``.
LOGISTIC_10_90 = 2.0 * math.log(9.0)
MIN_SUN_ELEVATION_DEG = 8.0  # below it the shadow's far edge leaves the view
MIN_SHADOW_CONTRAST = 0.2


def panel_shape(width: int) -> tuple[int, int]:
    """``(height, width)`` in pixels of a panel ``width`` pixels wide."""
    return max(1, round(width * ASPECT)), int(width)


def camera_axes() -> np.ndarray:
    """3x3 matrix whose columns are the camera's local X (right), Y (up) and Z (backwards) in
    world axes: it looks along its local -Z at :data:`CAMERA_TARGET`, with no roll."""
    forward = CAMERA_TARGET - CAMERA_LOCATION
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.stack([right, up, -forward], axis=1)


def camera_rays(xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unit ray directions (world axes, ``...x3``) through image points ``xy`` (``...x2``, pixels)."""
    tan_half = SENSOR_MM / 2.0 / LENS_MM
    x = (np.asarray(xy[..., 0], np.float64) / width * 2.0 - 1.0) * tan_half
    y = (1.0 - np.asarray(xy[..., 1], np.float64) / height * 2.0) * tan_half * height / width
    local = np.stack([x, y, -np.ones_like(x)], axis=-1)
    rays = local @ camera_axes().T
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def project(points: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates ``(...x2, pixels)`` of world ``points`` (``...x3``) and whether each lies
    in front of the camera."""
    local = (np.asarray(points, np.float64) - CAMERA_LOCATION) @ camera_axes()
    depth = -local[..., 2]
    tan_half = SENSOR_MM / 2.0 / LENS_MM
    safe = np.where(depth > 1e-9, depth, 1e-9)
    x = (local[..., 0] / safe / tan_half + 1.0) / 2.0 * width
    y = (1.0 - local[..., 1] / safe / (tan_half * height / width)) / 2.0 * height
    return np.stack([x, y], axis=-1), depth > 1e-9


def _sphere_hit(origin: np.ndarray, rays: np.ndarray, centre: np.ndarray, radius: float = RADIUS) -> np.ndarray:
    """Distance along unit ``rays`` from ``origin`` (``...x3`` or 3) to the sphere, inf on a miss."""
    oc = origin - centre
    b = (rays * oc).sum(-1)
    c = (oc * oc).sum(-1) - radius ** 2
    disc = b * b - c
    root = np.sqrt(np.maximum(disc, 0.0))
    near, far = -b - root, -b + root
    t = np.where(near > 1e-9, near, far)
    return np.where((disc >= 0.0) & (t > 1e-9), t, np.inf)


def trace(xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """The object (:data:`NOTHING`, :data:`GROUND`, :data:`DIFFUSE`, :data:`GLOSSY`) seen at image
    points ``xy`` (``...x2``) -> int array ``...``."""
    rays = camera_rays(xy, height, width)
    hits = [np.full(rays.shape[:-1], np.inf)]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(rays[..., 2] < 0.0, -CAMERA_LOCATION[2] / rays[..., 2], np.inf)
    ground = CAMERA_LOCATION + t_ground[..., None] * rays
    inside = np.all(np.abs(ground[..., :2]) <= GROUND_HALF_SIZE, axis=-1)
    hits.append(np.where(inside, t_ground, np.inf))
    hits += [_sphere_hit(CAMERA_LOCATION, rays, SPHERES[k]) for k in (DIFFUSE, GLOSSY)]
    stack = np.stack(hits, axis=0)
    ids = np.array([NOTHING, GROUND, DIFFUSE, GLOSSY])
    return ids[np.argmin(stack, axis=0)]


def sphere_normals(obj: int, height: int, width: int) -> np.ndarray:
    """Unit surface normals (world axes, ``HxWx3``) of sphere ``obj`` seen at the pixel centres,
    NaN where the pixel centre sees something else."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    xy = np.stack([cols + 0.5, rows + 0.5], axis=-1)
    rays = camera_rays(xy, height, width)
    t = _sphere_hit(CAMERA_LOCATION, rays, SPHERES[obj])
    normals = (CAMERA_LOCATION + t[..., None] * rays - SPHERES[obj]) / RADIUS
    return np.where((trace(xy, height, width) == obj)[..., None], normals, np.nan)


def interior_mask(obj: int, height: int, width: int) -> np.ndarray:
    """``HxW`` pixels that see only ``obj`` within one pixel of their centre: clear of its outline
    (where Cycles' 1.5 px film filter mixes in the neighbours) on a convex silhouette."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    mask = np.ones((height, width), bool)
    for dy in (-0.5, 1.5):
        for dx in (-0.5, 1.5):
            mask &= trace(np.stack([cols + dx, rows + dy], axis=-1), height, width) == obj
    return mask


def luminance(image: np.ndarray) -> np.ndarray:
    """Rec.709 luminance ``HxW`` (float64) of a linear ``HxWx3`` image."""
    return np.asarray(image, np.float64)[..., :3] @ REC709_Y.astype(np.float64)


def sphere_mean(image: np.ndarray, obj: int = DIFFUSE) -> float:
    """Mean linear luminance of a sphere's interior pixels (:func:`interior_mask`)."""
    height, width = image.shape[:2]
    mask = interior_mask(obj, height, width)
    return float(luminance(image)[mask].mean()) if mask.any() else float("nan")


# --------------------------------------------------------------------------- shadow edge

@dataclass(frozen=True)
class ShadowEdge:
    """The edge of a sphere's shadow on the ground, measured on a render.

    Attributes:
        width_px: 10-90 % width of the transition from shadow to lit ground, in pixels along the
            line through the shadow's far tip in the sun's direction; ``None`` when not measurable.
        note: what was measured (which sphere, contrast), or why nothing could be.
        sphere: ``"diffuse"`` or ``"glossy"`` (whose shadow), ``None`` when not measured.
        contrast: ``1 - shadow / lit`` of the fitted step (0..1), ``None`` when not measured.
    """

    width_px: float | None
    note: str
    sphere: str | None = None
    contrast: float | None = None


def _bilinear(values: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``values`` (``HxW``) at image points ``xy`` (``Nx2``), bilinear between pixel centres."""
    h, w = values.shape
    x = np.clip(xy[:, 0] - 0.5, 0.0, w - 1.0)
    y = np.clip(xy[:, 1] - 0.5, 0.0, h - 1.0)
    x0, y0 = np.minimum(x.astype(int), w - 2), np.minimum(y.astype(int), h - 2)
    fx, fy = x - x0, y - y0
    return ((values[y0, x0] * (1 - fx) + values[y0, x0 + 1] * fx) * (1 - fy)
            + (values[y0 + 1, x0] * (1 - fx) + values[y0 + 1, x0 + 1] * fx) * fy)


def _fit_step_grid(s: np.ndarray, p: np.ndarray, s0: np.ndarray, k: np.ndarray):
    """The best of the logistic steps with centres ``s0`` and scales ``k`` (see :func:`fit_step`)."""
    z = (s[None, None, :] - s0[:, None, None]) / k[None, :, None]
    f = 0.5 * (1.0 + np.tanh(0.5 * np.clip(z, -60, 60)))  # the logistic, without overflow
    n = s.size
    sf, sff, sp, sfp = f.sum(-1), (f * f).sum(-1), p.sum(), (f * p).sum(-1)
    det = n * sff - sf * sf
    ok = det > 1e-9
    det = np.where(ok, det, 1.0)
    lo = (sff * sp - sf * sfp) / det
    amp = (n * sfp - sf * sp) / det
    sse = ((lo[..., None] + amp[..., None] * f - p) ** 2).sum(-1)
    sse = np.where(ok & (amp > 0), sse, np.inf)
    i, j = np.unravel_index(int(np.argmin(sse)), sse.shape)
    return float(s0[i]), float(k[j]), float(lo[i, j]), float(lo[i, j] + amp[i, j])


def fit_step(s: np.ndarray, p: np.ndarray) -> tuple[float, float, float, float]:
    """Least-squares fit of ``lo + (hi - lo) / (1 + exp(-(s - s0) / k))`` to the profile ``p(s)``.

    A fitted step measures a noisy profile's 10-90 % width (``LOGISTIC_10_90 * k``) robustly,
    where the first crossings of the 10 % and 90 % levels would follow the render noise.
    Returns ``(s0, k, lo, hi)`` (``k`` between 0.05 and 60, units of ``s``): a grid search over
    ``s0`` and ``log k`` (``lo`` and ``hi`` solved in closed form), refined once around its best.
    """
    s, p = np.asarray(s, np.float64), np.asarray(p, np.float64)
    span = s[-1] - s[0]
    s0 = np.linspace(s[0] + 0.1 * span, s[-1] - 0.1 * span, 121)
    k = np.geomspace(0.05, 60.0, 90)
    best_s0, best_k, _, _ = _fit_step_grid(s, p, s0, k)
    ds, rk = s0[1] - s0[0], k[1] / k[0]
    return _fit_step_grid(s, p, np.linspace(best_s0 - ds, best_s0 + ds, 41),
                          np.geomspace(best_k / rk, best_k * rk, 41))


def _blocked(points: np.ndarray, towards: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Whether the rays from ``points`` (``Nx3``) along unit ``towards`` (3 or ``Nx3``) pass
    within ``radius`` of ``centre``."""
    return np.isfinite(_sphere_hit(points, np.broadcast_to(towards, points.shape), centre, radius))


def _edge_of(image_lum: np.ndarray, obj: int, d: np.ndarray) -> ShadowEdge:
    height, width = image_lum.shape
    centre = SPHERES[obj]
    a = np.array([d[0], d[1], 0.0]) / math.hypot(d[0], d[1])  # towards the sun, on the ground
    b = np.array([-a[1], a[0], 0.0])
    centre_shadow = centre - d * (centre[2] / d[2])
    tip = centre_shadow - a * (RADIUS / d[2])  # far end of the shadow ellipse
    t_in = min(0.8 * RADIUS / d[2], 0.6)
    t = np.linspace(-t_in, 0.6, 241)  # > 0: beyond the tip, away from the sun
    offsets = (-0.04, 0.0, 0.04)
    lines = np.stack([tip - a * t[:, None] + b * o for o in offsets])  # (3, N, 3)
    pts = lines.reshape(-1, 3)
    xy, in_front = project(pts, height, width)
    ok = in_front & (xy[:, 0] >= 1) & (xy[:, 0] <= width - 1) & (xy[:, 1] >= 1) & (xy[:, 1] <= height - 1)
    to_camera = CAMERA_LOCATION - pts
    to_camera /= np.linalg.norm(to_camera, axis=-1, keepdims=True)
    other = GLOSSY if obj == DIFFUSE else DIFFUSE
    for c in SPHERES.values():
        ok &= ~_blocked(pts, to_camera, c, RADIUS)  # hidden behind a sphere
    ok &= ~_blocked(pts, d, SPHERES[other], 1.2 * RADIUS)  # in (or near) the other sphere's shadow
    ok = ok.reshape(len(offsets), -1).all(axis=0)
    tip_index = int(np.searchsorted(t, 0.0))
    if not ok[tip_index]:
        return ShadowEdge(None, f"the {SPHERE_NAMES[obj]} sphere's shadow tip is out of view or hidden")
    lo_i = tip_index
    while lo_i > 0 and ok[lo_i - 1]:
        lo_i -= 1
    hi_i = tip_index
    while hi_i < len(t) - 1 and ok[hi_i + 1]:
        hi_i += 1
    if t[lo_i] > -0.15 or t[hi_i] < 0.15:
        return ShadowEdge(None, f"too little ground around the {SPHERE_NAMES[obj]} sphere's shadow tip is in view")
    sel = slice(lo_i, hi_i + 1)
    profile = np.mean([_bilinear(image_lum, xy.reshape(len(offsets), -1, 2)[i][sel]) for i in range(len(offsets))],
                      axis=0)
    centre_xy = xy.reshape(len(offsets), -1, 2)[1][sel]
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(centre_xy, axis=0), axis=-1))])
    s0, k, lo, hi = fit_step(s, profile)
    if hi <= 0 or (hi - lo) / hi < MIN_SHADOW_CONTRAST:
        contrast = (hi - lo) / hi if hi > 0 else 0.0
        return ShadowEdge(None, f"no distinct shadow (contrast {100 * contrast:.0f} %)")
    return ShadowEdge(LOGISTIC_10_90 * k, f"{SPHERE_NAMES[obj]} sphere's shadow", SPHERE_NAMES[obj], (hi - lo) / hi)


def shadow_edge(image: np.ndarray, sun_direction) -> ShadowEdge:
    """Width of the edge of a sphere's shadow cast by a light from ``sun_direction``.

    The line runs on the ground through the far tip of the shadow (where the penumbra is
    widest), along the sun's azimuth; the luminance profile along it (the mean of three lines
    4 cm apart) is fitted with a logistic step (:func:`fit_step`) whose 10-90 % width, converted
    to pixels along the line, is the result. The diffuse sphere's shadow is measured, the
    glossy sphere's when the diffuse one's is out of view, hidden or in the other's shadow.

    Args:
        image: linear ``HxWx3`` render of the scene.
        sun_direction: unit vector towards the light, Blender world axes (+Z up).
    """
    d = np.asarray(sun_direction, np.float64)
    d = d / np.linalg.norm(d)
    if d[2] < math.sin(math.radians(MIN_SUN_ELEVATION_DEG)):
        return ShadowEdge(None, f"the light is less than {MIN_SUN_ELEVATION_DEG:g} deg above the horizon")
    if math.hypot(d[0], d[1]) < 0.05:
        return ShadowEdge(None, "the light is overhead: the shadows are hidden under the spheres")
    lum = luminance(image)
    first = _edge_of(lum, DIFFUSE, d)
    if first.width_px is not None or first.note.startswith("no distinct"):
        return first
    second = _edge_of(lum, GLOSSY, d)
    return second if second.width_px is not None else first


# --------------------------------------------------------------------------- panels

def exposure_for(image: np.ndarray) -> float:
    """Linear gain that puts the 99th percentile of ``image``'s luminance at display white
    (the lit ground, leaving only the glossy sphere's highlights to clip)."""
    top = float(np.percentile(luminance(image), 99.0))
    return 1.0 / top if top > 0 and math.isfinite(top) else 1.0


def to_display(image: np.ndarray, gain: float) -> np.ndarray:
    """sRGB display values ``HxWx3`` in [0, 1] of a linear image times ``gain`` (clipped)."""
    v = np.nan_to_num(np.asarray(image, np.float64)[..., :3] * gain, nan=0.0, posinf=1.0)
    return linear_to_srgb(v).astype(np.float32)


def label(panel: np.ndarray, text: str) -> np.ndarray:
    """``panel`` (display values ``HxWx3``) with ``text`` written in its top-left corner (white
    with a dark shadow, readable on any background); unchanged when text cannot be drawn (also when
    OpenImageIO's Python module is missing, as in some Blenders' own Python)."""
    try:
        import OpenImageIO as oiio
    except ImportError:
        return panel

    height, width = panel.shape[:2]
    size = max(8, round(width / 13))
    buf = oiio.ImageBuf(np.ascontiguousarray(panel, np.float32))
    x, y = max(2, size // 3), size + 1
    drawn = (oiio.ImageBufAlgo.render_text(buf, x + 1, y + 1, text, size, "", (0.0, 0.0, 0.0))
             and oiio.ImageBufAlgo.render_text(buf, x, y, text, size, "", (1.0, 1.0, 1.0)))
    return buf.get_pixels(oiio.FLOAT).reshape(height, width, 3) if drawn else panel


def compose(panels: list[np.ndarray | None], labels: list[str], gain: float, shape: tuple[int, int]) -> np.ndarray:
    """The panels (linear ``shape`` = ``(H, W)`` renders; ``None`` for a dark placeholder) side by
    side as one display image in [0, 1], all with the same exposure ``gain`` so their brightness
    compares, each labelled."""
    shown = [np.full((*shape, 3), 0.1, np.float32) if p is None else to_display(p, gain) for p in panels]
    return np.concatenate([label(p, text) for p, text in zip(shown, labels)], axis=1)
