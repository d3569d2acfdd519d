"""Make the README's pictures (small PNGs in docs/images/).

    python training/make_figures.py [--method learned|classical] [--hdr sunrise] [--view Filmic]

1. ``before_after.png``: the LDR photo (a real HDR panorama from the bpy wheel through a
   Blender view transform, 8-bit JPEG), then the reconstruction and the true HDR both shown
   4 stops darker, so the restored energy of the sun is visible. The reconstruction is aligned
   to the truth by the median ratio over unclipped pixels (the same alignment as the
   evaluation harness), because a single photo has no absolute scale.
2. ``crf_plot.png``: the camera curve that made the photo, the sRGB assumption, and the
   estimated curve.
3. ``relight.png`` (``--relight``, needs bpy; about a minute): Blender's ``city`` studio light
   made an 8-bit JPEG (Filmic, 2 % clipped), then one little scene (diffuse and glossy spheres on
   a white ground, Cycles) lit by the photo decoded as plain sRGB, by ldr2hdr's map, by ldr2hdr's
   map without its sun plus the extracted Sun lamp, and by the true HDR; all aligned to the truth
   by the median over unclipped pixels and shown at one exposure.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from ldr2hdr.evaluation import synth
from ldr2hdr.inference import crf, demo, io, pipeline
from ldr2hdr.inference.imaging import luminance

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"


def _area_resize(img: np.ndarray, width: int) -> np.ndarray:
    f = max(1, img.shape[1] // width)
    h, w = img.shape[0] // f * f, img.shape[1] // f * f
    return img[:h, :w].reshape(h // f, f, w // f, f, 3).mean(axis=(1, 3))


def _label(img: np.ndarray, text: str) -> np.ndarray:
    buf = oiio.ImageBuf(np.ascontiguousarray(img, dtype=np.float32))
    oiio.ImageBufAlgo.render_box(buf, 0, 0, 8 * len(text) + 12, 22, (0, 0, 0), fill=True)
    oiio.ImageBufAlgo.render_text(buf, 6, 16, text, 14, "", (1, 1, 1))
    return np.asarray(buf.get_pixels(oiio.FLOAT)).reshape(img.shape)


def _display(hdr: np.ndarray, stops: float) -> np.ndarray:
    return crf.linear_to_srgb(np.clip(hdr * 2.0 ** stops, 0, 1)).astype(np.float32)


def _alignment(pred: np.ndarray, exposed: np.ndarray, ok: np.ndarray) -> float:
    """The factor that aligns ``pred`` to the truth as the harness does: the median luminance
    ratio over the pixels ``ok`` (not clipped in the photo)."""
    yr, yp = luminance(exposed)[ok], luminance(pred)[ok]
    good = (yr > 0) & (yp > 0)
    return float(np.exp(np.median(np.log(yr[good]) - np.log(yp[good]))))


def before_after(method: str, hdr_name: str, view: str) -> tuple[np.ndarray, crf.InverseCRF]:
    ref = io.read_image(demo.resolve_hdr(hdr_name)).pixels
    display = demo.make_ldr(ref, view)
    ldr = synth.encode_jpeg(display, 90)
    result = pipeline.run(ldr, pipeline.Settings(method=method))
    exposed = ref * synth.exposure_for_clip_fraction(ref, demo.DEMO_CLIP_FRACTION)
    ok = ldr.max(axis=-1) < 250 / 255
    hdr = result.hdr * _alignment(result.hdr, exposed, ok)
    w = 512
    panels = [
        _label(_area_resize(ldr, w), f"photo: 8-bit JPEG, Blender {view} curve"),
        _label(_display(_area_resize(hdr, w), -4), f"ldr2hdr ({method}), shown 4 stops darker"),
        _label(_display(_area_resize(exposed, w), -4), "true HDR, shown 4 stops darker"),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    io.write_png(OUT / "before_after.png", np.concatenate(panels, axis=0))
    return ldr, result.inverse_crf


def crf_plot(estimated: crf.InverseCRF, view: str, size: int = 360) -> None:
    pad = 40
    img = np.full((size + 2 * pad, size + 2 * pad, 3), 0.12, np.float32)
    buf = oiio.ImageBuf(img)
    x0, y0 = pad, size + pad
    for t in np.linspace(0, 1, 5):
        p = int(round(t * size))
        oiio.ImageBufAlgo.render_line(buf, x0 + p, y0, x0 + p, y0 - size, (0.25, 0.25, 0.25))
        oiio.ImageBufAlgo.render_line(buf, x0, y0 - p, x0 + size, y0 - p, (0.25, 0.25, 0.25))
    curves = [
        (synth.true_inverse_curve(view.lower().replace(" ", "-")), (1, 1, 1), f"true ({view})"),
        (crf.srgb_inverse().gray, (1, 0.3, 0.3), "sRGB assumption"),
        (estimated.gray, (0.3, 1, 0.4), f"estimated ({estimated.method})"),
    ]
    for k, (curve, colour, name) in enumerate(curves):
        xs = np.linspace(0, 1, 128)
        ys = np.interp(xs, crf.GRID, curve)
        pts = [(x0 + int(round(x * size)), y0 - int(round(y * size))) for x, y in zip(xs, ys)]
        for (a, b), (c, d) in zip(pts[:-1], pts[1:]):
            oiio.ImageBufAlgo.render_line(buf, a, b, c, d, colour)
        oiio.ImageBufAlgo.render_text(buf, x0 + 10, pad + 18 + 18 * k, name, 14, "", colour)
    oiio.ImageBufAlgo.render_text(buf, x0 + size // 2 - 50, y0 + 28, "pixel value", 14, "", (0.8, 0.8, 0.8))
    oiio.ImageBufAlgo.render_text(buf, 4, pad - 10, "linear radiance", 14, "", (0.8, 0.8, 0.8))
    io.write_png(OUT / "crf_plot.png", np.asarray(buf.get_pixels(oiio.FLOAT)).reshape(img.shape))


def relight_figure(method: str, hdr_name: str = "city", view: str = "Filmic", width: int = 240) -> list[str]:
    """``relight.png``; returns one line per panel (diffuse sphere mean, shadow edge)."""
    from ldr2hdr.inference.lighting import sun as sun_mod
    from ldr2hdr.render import relight, stage

    ref = io.read_image(demo.resolve_hdr(hdr_name)).pixels
    ldr = synth.encode_jpeg(demo.make_ldr(ref, view), 90)
    exposed = ref * synth.exposure_for_clip_fraction(ref, demo.DEMO_CLIP_FRACTION)
    result = pipeline.run(ldr, pipeline.Settings(method=method, panorama="on"))
    ok = ldr.max(axis=-1) < 250 / 255

    decoded = crf.srgb_to_linear(ldr)
    plain = (decoded * _alignment(decoded, exposed, ok)).astype(np.float32)
    scale = _alignment(result.hdr, exposed, ok)
    ours = (result.hdr * scale).astype(np.float32)
    listed = [dict(d, energy=d["energy"] * scale, clip_level_energy=d["clip_level_energy"] * scale)
              for d in result.sources]
    ex = sun_mod.extract_sun(ours, sources=listed)
    truth_sun = sun_mod.extract_sun(exposed.astype(np.float32)).sun
    shadow_dir = relight.map_direction_to_blender((ex.sun or truth_sun).direction) if (ex.sun or truth_sun) else None
    runs = [("photo as sRGB", plain, None), ("ldr2hdr", ours, None),
            ("ldr2hdr - sun + Sun lamp", ex.without_sun, relight.Lamp.from_sun(ex.sun)) if ex.sun else
            ("(no sun found)", None, None), ("true HDR", exposed.astype(np.float32), None)]
    images, lines = [], []
    for name, m, lamp in runs:
        img = None if m is None else relight.render(m, lamp, width=width, samples=64)
        images.append(img)
        if img is not None:
            edge = stage.shadow_edge(img, shadow_dir) if shadow_dir is not None else None
            lines.append(f"{name}: diffuse sphere {stage.sphere_mean(img, stage.DIFFUSE):.3f}, shadow edge "
                         + (f"{edge.width_px:.1f} px" if edge is not None and edge.width_px else "n/a"))
    gain = stage.exposure_for(images[-1])
    OUT.mkdir(parents=True, exist_ok=True)
    io.write_png(OUT / "relight.png", stage.compose(images, [r[0] for r in runs], gain, stage.panel_shape(width)))
    lines.append(f"sun: {ex.reason}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default=pipeline.Settings().method, choices=pipeline.METHODS)
    ap.add_argument("--hdr", default="sunrise")
    ap.add_argument("--view", default="Filmic")
    ap.add_argument("--relight", action="store_true", help="also relight.png (Cycles, needs bpy)")
    args = ap.parse_args(argv)
    if args.relight:
        for line in relight_figure(args.method):
            print(line)
    _, inv = before_after(args.method, args.hdr, args.view)
    crf_plot(inv, args.view)
    print(f"wrote {OUT / 'before_after.png'} and {OUT / 'crf_plot.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
