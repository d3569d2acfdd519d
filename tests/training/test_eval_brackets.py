"""training/eval_brackets.py: the merge of a real bracket and its measures, on a bracket made here."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
eval_brackets = pytest.importorskip("eval_brackets")

from ldr2hdr.inference import crf  # noqa: E402


def _bracket(folder: Path, radiance: np.ndarray, times=(0.03, 0.12, 0.48)) -> None:
    # (OpenImageIO 3 writes exposure times such as 1/4 or 1/8 s as infinity: avoided here)
    from conftest import write_with_oiio

    srgb = crf.srgb_inverse().curves[0]
    for i, t in enumerate(times):
        codes = np.round(crf.apply_crf(np.clip(radiance * t, 0, 1), crf.srgb_inverse()) * 255).astype(np.uint8)
        write_with_oiio(folder / f"IMG_{i}.jpg", codes, {"ExposureTime": float(t), "FNumber": 8.0,
                                                          "Exif:PhotographicSensitivity": 100,
                                                          "Compression": "jpeg:100"})
    np.save(folder / "test_crfs.npy", np.stack([np.interp(np.arange(256) / 255, np.linspace(0, 1, srgb.size), srgb)] * 3, 1))


def test_merge_recovers_the_radiance_and_the_curve_rows(tmp_path):
    ramp = np.geomspace(0.08, 12.0, 96)[None, :, None] * np.linspace(0.8, 1.2, 64)[:, None, None]
    radiance = (ramp * np.array([0.9, 1.0, 1.1])).astype(np.float32)  # smooth: JPEG keeps it
    radiance[20:30, 40:50] = 40.0  # clipped in every exposure
    _bracket(tmp_path, radiance)
    folder = tmp_path
    photos = [eval_brackets.io.read_image(p, codes=True) for p in sorted(folder.glob("*.jpg"))]
    response = eval_brackets.response_1024(folder / "test_crfs.npy")
    ref, known = eval_brackets.merge([np.asarray(p.pixels) for p in photos], [p.exif.exposure_time for p in photos],
                                     response)
    assert not known[20:30, 40:50].any(), "a pixel clipped in every exposure is unknown"
    k = known & (radiance.max(-1) > 0.05)
    rel = np.abs(ref[k] / radiance[k] - 1)  # JPEG at quality 100, 8-bit codes; ringing at the patch's edge
    assert np.median(rel) < 0.01 and np.mean(rel < 0.05) > 0.999
    rows = eval_brackets.evaluate_bracket(folder)
    assert [r["exposure_s"] for r in rows] == pytest.approx([0.03, 0.12, 0.48], rel=1e-4) and rows[0]["camera"] is None
    for r in rows:
        assert r["crf_rmse_srgb"] < 0.002, "the response is sRGB here"
        assert r["si_log2_srgb"] < 0.05
        assert abs(r["clip_shift_srgb"]) < 0.05
    assert rows[-1]["clipped_known"] > 0.1 and "clipped_energy_log2_default" in rows[-1]
    assert rows[-1]["clipped_energy_log2_srgb_clip"] < -0.5, "the clip level holds less than the merge"
    # every pair of exposures compared in --scale exif units (how well they agree is the curve's)
    ratios = [v for r in rows for v in r.get("exif_units_log2_vs", {}).values()]
    assert len(ratios) == 3 and all(np.isfinite(ratios)), ratios


def test_partial_clip_share_counts_pixels_clipped_in_some_channels_only():
    measure = pytest.importorskip("measure_partial_clip")
    hdr = np.full((64, 128, 3), 0.05, np.float64)
    hdr[10:20, 10:20] = [40.0, 40.0, 40.0]  # a white lamp: clipped in every channel
    hdr[40:50, 60:70] = [10.0, 0.5, 0.05]  # a red lamp: only red clips
    px, energy = measure.partial_shares(hdr, "srgb", 0.02)
    w = np.cos((np.arange(64) + 0.5) / 64 * np.pi - np.pi / 2)  # solid angle per row
    y = hdr @ np.array([0.2126, 0.7152, 0.0722])
    red = float(np.sum((y * w[:, None])[40:50, 60:70]))
    white = float(np.sum((y * w[:, None])[10:20, 10:20]))
    assert px == pytest.approx(0.5, abs=0.02)
    assert energy == pytest.approx(red / (red + white), rel=0.02)
