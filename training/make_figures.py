"""Make the README's pictures (small PNGs in docs/images/).

    python training/make_figures.py [--method learned|classical] [--hdr sunrise] [--view Filmic]

1. ``before_after.png``: the LDR photo (a real HDR panorama from the bpy wheel through a
   Blender view transform, 8-bit JPEG), then the reconstruction and the true HDR both shown
   4 stops darker, so the restored energy of the sun is visible. The reconstruction is aligned
   to the truth by the median ratio over unclipped pixels (the same alignment as the
   evaluation harness), because a single photo has no absolute scale.
2. ``crf_plot.png``: the camera curve that made the photo, the sRGB assumption, and the
   estimated curve.
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


def before_after(method: str, hdr_name: str, view: str) -> tuple[np.ndarray, crf.InverseCRF]:
    ref = io.read_image(demo.resolve_hdr(hdr_name)).pixels
    display = demo.make_ldr(ref, view)
    ldr = synth.encode_jpeg(display, 90)
    result = pipeline.run(ldr, pipeline.Settings(method=method))
    exposed = ref * synth.exposure_for_clip_fraction(ref, demo.DEMO_CLIP_FRACTION)
    ok = ldr.max(axis=-1) < 250 / 255
    yr, yp = luminance(exposed)[ok], luminance(result.hdr)[ok]
    good = (yr > 0) & (yp > 0)
    hdr = result.hdr * float(np.exp(np.median(np.log(yr[good]) - np.log(yp[good]))))
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default=pipeline.Settings().method, choices=pipeline.METHODS)
    ap.add_argument("--hdr", default="sunrise")
    ap.add_argument("--view", default="Filmic")
    args = ap.parse_args(argv)
    _, inv = before_after(args.method, args.hdr, args.view)
    crf_plot(inv, args.view)
    print(f"wrote {OUT / 'before_after.png'} and {OUT / 'crf_plot.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
