"""Light sources and their energy: components on the sphere, the rescale, the estimator file."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ldr2hdr.evaluation.lighting import area_downsample
from ldr2hdr.inference import pipeline
from ldr2hdr.inference.errors import WeightsError
from ldr2hdr.inference.highlights import energy, sources, trees


def _encode(linear: np.ndarray) -> np.ndarray:
    """An LDR image of ``linear``: gamma 2.2, clipped at 1 (not quantized)."""
    return np.where(linear >= 1.0, 1.0, linear ** (1 / 2.2)).astype(np.float32)


def _disc(cy: int, cx: int, r: int, h: int = 256, w: int = 512) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _pano_with_blob(h=128, w=256, cx=0, cy=40, r=6, level=1.0):
    """An LDR/linear pair: a dim sky with one clipped disc centred at column ``cx`` (may straddle the seam)."""
    yy, xx = np.mgrid[0:h, 0:w]
    dx = np.minimum(np.abs(xx - cx), w - np.abs(xx - cx))
    disc = dx ** 2 + (yy - cy) ** 2 <= r * r
    linear = np.full((h, w, 3), 0.05, np.float32)
    linear[disc] = level
    ldr = _encode(linear)
    return linear, ldr, disc


def test_components_wrap_across_the_seam_and_meet_at_the_poles():
    m = np.zeros((8, 16), bool)
    m[3, 0] = m[3, 15] = True  # both sides of the seam
    m[0, 2] = m[0, 9] = True  # the top row meets at the zenith
    labels, n = sources.label_components(m, wrap=True)
    assert n == 2 and labels[3, 0] == labels[3, 15] and labels[0, 2] == labels[0, 9]
    _, n_flat = sources.label_components(m, wrap=False)
    assert n_flat == 4


def test_a_source_across_the_seam_is_one_source():
    linear, ldr, _ = _pano_with_blob(cx=0)
    found = sources.find_sources(linear, ldr, panorama=True)
    assert found.count == 1
    assert found.features.shape == (1, len(sources.FEATURE_NAMES))
    assert np.all(np.isfinite(found.features))
    # it points at the seam (longitude 180 degrees: -Z is the centre column, so +Z), 33 degrees up
    x, y, z = found.direction[0]
    assert abs(x) < 0.02 and z > 0 and np.degrees(np.arcsin(y)) == pytest.approx(90 - 40.5 * 180 / 128, abs=1.5)


def test_a_flat_photo_does_not_wrap():
    linear, ldr, _ = _pano_with_blob(h=100, w=300, cx=0)
    assert sources.find_sources(linear, ldr, panorama=False).count == 2


def test_rescale_puts_exactly_the_target_energy_into_each_source():
    linear, ldr, disc = _pano_with_blob(h=256, w=512, cx=100, cy=60, r=8)
    lin2, ldr2, disc2 = _pano_with_blob(h=256, w=512, cx=350, cy=150, r=5)
    linear = np.where(disc2[..., None], lin2, linear)
    ldr = np.where(disc2[..., None], ldr2, ldr)
    found = sources.find_sources(linear, ldr, panorama=True)
    assert found.count == 2
    clipped = ldr.max(-1) >= sources.CLIP_CODE
    hdr = linear.copy()
    hdr[disc] *= 3.0  # a restoration with some shape in the first source, nothing in the second
    target = found.fill * np.array([10.0, 40.0])
    out = energy.rescale_sources(hdr.copy(), linear, clipped, found, target)
    got = found.fill + energy.excess_energy(out, linear, clipped, found)
    np.testing.assert_allclose(got, target, rtol=1e-4)
    np.testing.assert_array_equal(out[~clipped], linear[~clipped])


def test_rescale_is_exact_when_the_restoration_dips_below_the_fill_in_one_channel():
    # a restoration that lowers red while raising green and blue: the rescale scales what each
    # channel adds above the fill, so the energy it measures must count the same per-channel excess
    linear, ldr, disc = _pano_with_blob(h=256, w=512, cx=100, cy=60, r=8)
    found = sources.find_sources(linear, ldr, panorama=True)
    clipped = ldr.max(-1) >= sources.CLIP_CODE
    hdr = linear.copy()
    hdr[disc] *= np.array([0.9, 1.05, 1.05], np.float32)  # luminance barely above the fill
    target = found.fill * 8.0
    out = energy.rescale_sources(hdr, linear, clipped, found, target)
    np.testing.assert_allclose(found.fill + energy.excess_energy(out, linear, clipped, found), target, rtol=1e-4)


def test_a_core_source_gets_its_missing_energy_as_a_compact_core_inside_the_blob():
    linear, ldr, disc = _pano_with_blob(h=256, w=512, cx=100, cy=60, r=20)
    found = sources.find_sources(linear, ldr, panorama=True)
    clipped = ldr.max(-1) >= sources.CLIP_CODE
    hdr = linear.copy()
    yy, xx = np.mgrid[0:256, 0:512]
    hdr[disc] += (1.0 / (1.0 + (xx - 104) ** 2 + (yy - 58) ** 2))[disc][:, None]  # a peak off the centre
    target = found.fill * 2.0 ** 8
    flat = energy.rescale_sources(hdr.copy(), linear, clipped, found, target)
    out = energy.rescale_sources(hdr.copy(), linear, clipped, found, target, core=np.array([True]))
    for img in (flat, out):
        got = found.fill + energy.excess_energy(img, linear, clipped, found)
        np.testing.assert_allclose(got, target, rtol=2e-3)
        np.testing.assert_array_equal(img[~clipped], linear[~clipped])
    # the core sits at the deepest part of the clipped blob (the disc's centre, not the
    # restoration's off-centre peak), and holds most of the added energy within 3 pixels of it
    w = sources.pixel_solid_angle(256, 512, True)
    cy, cx = 60, 100
    peak = np.unravel_index(np.argmax(out[..., 1]), out.shape[:2])
    assert abs(peak[0] - cy) <= 2 and abs(peak[1] - cx) <= 2
    near = ((xx - peak[1]) ** 2 + (yy - peak[0]) ** 2 <= 9) & disc
    added = (out - hdr)[..., 1] * w
    assert added[near].sum() > 0.5 * added[disc].sum()
    # the uniform gain keeps the blob's shape instead: its edge gets (much) more than the core's
    edge = disc & ~near
    assert np.median(flat[edge, 1]) > 10 * np.median(out[edge, 1])
    # what the restoration put there stays (the core is added on top of it)
    assert np.all(out[disc] >= hdr[disc] - 1e-6)


def test_the_core_goes_to_the_part_clipped_in_every_channel():
    # a wide blue patch of sky clipped in its blue channel only, with a white sun disc near its
    # upper edge: the core belongs on the white disc, not at the middle of the whole blob
    patch, sun = _disc(90, 200, 30), _disc(70, 200, 5)
    linear = np.full((256, 512, 3), 0.05, np.float32)
    linear[patch] = (0.4, 0.6, 1.0)
    linear[sun] = 1.0
    ldr = _encode(linear)
    found = sources.find_sources(linear, ldr, panorama=True)
    assert found.count == 1
    clipped = ldr.max(-1) >= sources.CLIP_CODE
    target = found.fill * 2.0 ** 8
    out = energy.rescale_sources(linear.copy(), linear, clipped, found, target, core=np.array([True]))
    peak = np.unravel_index(np.argmax(out[..., 1]), out.shape[:2])
    assert sun[peak], f"core at {peak}, the white disc is centred at (70, 200)"
    # without the per-channel information (the same blob, every channel clipped) it sits lower
    found.all_clipped = None
    out = energy.rescale_sources(linear.copy(), linear, clipped, found, target, core=np.array([True]))
    peak = np.unravel_index(np.argmax(out[..., 1]), out.shape[:2])
    assert not sun[peak]


def test_a_suns_core_goes_to_the_top_of_a_blob_stretched_downwards():
    # a sun disc with the haze below it clipped too (two discs of the same size, one under the
    # other): the blob is as thick at the haze as at the sun, and the sun is the upper one; a
    # lamp's core stays at the blob's deepest point
    sun, haze = _disc(100, 200, 12), _disc(118, 200, 12)
    linear = np.full((256, 512, 3), 0.05, np.float32)
    linear[sun | haze] = 1.0
    ldr = _encode(linear)
    found = sources.find_sources(linear, ldr, panorama=True)
    clipped = ldr.max(-1) >= sources.CLIP_CODE
    target = found.fill * 2.0 ** 8
    out = energy.rescale_sources(linear.copy(), linear, clipped, found, target, core=np.array([True]), sun=0)
    peak = np.unravel_index(np.argmax(out[..., 1]), out.shape[:2])
    assert sun[peak] and peak[0] < 106 and abs(peak[1] - 200) <= 2, f"core at {peak}, the sun is centred at (100, 200)"
    lamp = energy.rescale_sources(linear.copy(), linear, clipped, found, target, core=np.array([True]))
    peak = np.unravel_index(np.argmax(lamp[..., 1]), lamp.shape[:2])
    assert 106 <= peak[0] <= 112, f"lamp core at {peak}, the blob's middle is row 109"


def test_a_core_is_never_put_on_a_flat_photo():
    linear, ldr, disc = _pano_with_blob(h=100, w=300, cx=150, cy=50, r=10)
    found = sources.find_sources(linear, ldr, panorama=False)
    clipped = ldr.max(-1) >= sources.CLIP_CODE
    target = found.fill * 16.0
    a = energy.rescale_sources(linear.copy(), linear, clipped, found, target)
    b = energy.rescale_sources(linear.copy(), linear, clipped, found, target, core=np.ones(found.count, bool))
    np.testing.assert_array_equal(a, b)


def test_a_target_below_the_clip_level_leaves_the_fill():
    linear, ldr, disc = _pano_with_blob()
    found = sources.find_sources(linear, ldr, panorama=True)
    clipped = ldr.max(-1) >= sources.CLIP_CODE
    hdr = linear.copy()
    hdr[disc] *= 5
    out = energy.rescale_sources(hdr, linear, clipped, found, found.fill * 0.5)
    np.testing.assert_allclose(out, linear, rtol=1e-6)


def test_pure_sky_without_clipping_gets_no_invented_sun(studio_light):
    from ldr2hdr.inference.io import read_image

    sky = np.asarray(read_image(studio_light_path_or(studio_light, "forest")).pixels, np.float32)[::4, ::4]
    sky = sky / (sky.max() * 1.5)  # nothing reaches the clip level
    ldr = (np.round(np.clip(sky, 0, 1) ** (1 / 2.2) * 255) / 255).astype(np.float32)
    result = pipeline.run(ldr, pipeline.Settings(crf="gamma2.2", panorama="on"))
    assert result.sources == []
    np.testing.assert_array_equal(result.hdr, result.linear)


def studio_light_path_or(fixture, name):
    return fixture(name)


def test_pipeline_reports_sources_and_keeps_unclipped_pixels():
    linear, ldr, disc = _pano_with_blob(h=256, w=512, cx=256, cy=50, r=10)
    on = pipeline.run(ldr, pipeline.Settings(crf="gamma2.2", panorama="on", dequantize=False))
    off = pipeline.run(ldr, pipeline.Settings(crf="gamma2.2", panorama="on", dequantize=False, energy="off"))
    clipped = ldr.max(-1) >= sources.CLIP_CODE
    np.testing.assert_array_equal(on.hdr[~clipped], off.hdr[~clipped])
    assert len(on.sources) == 1 and off.sources == []
    src = on.sources[0]
    assert src["class"] in energy.CLASSES
    assert src["energy"] >= src["clip_level_energy"] > 0
    assert 30 < src["elevation_deg"] < 80
    json.dumps(on.metadata["sources"])  # stored in the EXR header as JSON


def _pano_with_soft_edge():
    """A clipped disc with a ring of pixels just below the clip code around it (the soft mask's
    edge, where JPEG rings around clipped regions), over a dim sky."""
    # 2304 px wide: the network runs at half size, so the banded path (large images) applies too
    linear, ldr, disc = _pano_with_blob(h=1152, w=2304, cx=1152, cy=225, r=45)
    ring = ~disc & _pano_with_blob(h=1152, w=2304, cx=1152, cy=225, r=75)[2]
    ldr[ring] = 252 / 255
    return (np.round(ldr * 255) / 255).astype(np.float32), disc, ring  # 8-bit, as the banded path reads it


def test_unclipped_pixels_the_network_runs_away_on_are_held_at_the_brightest_clipped_one(monkeypatch):
    # A runaway network (seen on a deep orange sunset sky: 2^31 x the clip level) makes every
    # masked pixel e^25 brighter; the energy step rescales the clipped pixels only, so the
    # unclipped ones are held at the brightest clipped pixel near them, and at the clip level
    # away from clipped pixels; everything the network did not touch is as it was. The
    # whole-image and the banded paths agree.
    from ldr2hdr.inference import banded
    from ldr2hdr.inference.highlights import learned

    ldr, disc, ring = _pano_with_soft_edge()
    settings = pipeline.Settings(crf="gamma2.2", panorama="on", dequantize=False)
    sane = pipeline.run(ldr, settings)
    real = learned.network_log_increase

    def runaway(linear, mask, **kw):
        delta = real(linear, mask, **kw)
        delta[mask > 0] += 25.0
        return delta

    monkeypatch.setattr(learned, "network_log_increase", runaway)
    out = pipeline.run(ldr, settings).hdr
    clipped = ldr.max(-1) >= sources.CLIP_CODE
    ceiling = float(out[clipped].max())
    assert ring.any() and not (ring & clipped).any()
    assert float(out[ring].max()) == pytest.approx(ceiling, rel=1e-5)  # held, not e^25 over it
    assert float(out[ring].max()) < 1e4
    # beyond CEILING_CELLS cells (2 x 4.5 px here, diagonally and with the cells' own extent up
    # to about 20 px) from any clipped pixel: at most the clip level
    far = ring & ~_pano_with_blob(h=1152, w=2304, cx=1152, cy=225, r=45 + 22)[2]
    assert far.any() and float(out[far].max()) <= 1.0 + 1e-6
    untouched = ~clipped & ~ring & (sane.mask == 0)
    np.testing.assert_array_equal(out[untouched], sane.hdr[untouched])
    codes = np.round(ldr * 255).astype(np.uint8)
    bands = banded.reconstruct(codes, settings, band_rows=40)
    np.testing.assert_allclose(np.concatenate(list(bands.bands())), out, rtol=1e-4)  # measured 1.3e-5


def test_estimator_file_is_sha256_checked(tmp_path):
    bundled = energy.WEIGHTS_NAME
    from ldr2hdr.inference import weights as weights_mod

    src = weights_mod.WEIGHTS_DIR / bundled
    dst = tmp_path / bundled
    shutil.copy(src, dst)
    manifest = json.loads((weights_mod.WEIGHTS_DIR / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({"files": {bundled: manifest["files"][bundled]}}))
    assert energy.load_model(dst).feature_names == sources.FEATURE_NAMES
    data = bytearray(dst.read_bytes())
    data[-1] ^= 0xFF
    dst.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        energy.load_model(dst)


def test_estimator_arrays_are_loaded_strictly():
    from safetensors.numpy import load_file
    from ldr2hdr.inference import weights as weights_mod

    arrays = load_file(str(weights_mod.WEIGHTS_DIR / energy.WEIGHTS_NAME))
    energy.model_from_arrays(arrays)
    broken = dict(arrays)
    del broken["q84.value"]
    with pytest.raises(WeightsError, match="missing"):
        energy.model_from_arrays(broken)
    bad = dict(arrays)
    bad["mean_fill.left"] = bad["mean_fill.left"] + 10 ** 6
    with pytest.raises(WeightsError, match="out of range"):
        energy.model_from_arrays(bad)
    renamed = dict(arrays)
    renamed["feature_names"] = np.frombuffer(b"a,b", dtype=np.uint8).copy()
    with pytest.raises(WeightsError, match="other source features"):
        energy.model_from_arrays(renamed)


def test_tree_arrays_match_scikit_learn():
    sklearn = pytest.importorskip("sklearn.ensemble")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    x[rng.random(x.shape) < 0.05] = np.nan
    y = np.nan_to_num(x[:, 0]) * 2 + np.sin(np.nan_to_num(x[:, 1])) + rng.normal(scale=0.1, size=400)
    model = sklearn.HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(x, y)
    np.testing.assert_allclose(trees.predict(trees.export_sklearn(model), x), model.predict(x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape,work", [((100, 300), (37, 111)), ((64, 128), (32, 64)), ((50, 70), (50, 70))])
def test_working_grid_reduction_is_an_exact_area_average(shape, work):
    rng = np.random.default_rng(1)
    img = rng.random((*shape, 2))
    got = sources.reduce_to_work(lambda r0, r1: [img[r0:r1, :, 0], img[r0:r1, :, 1]], *shape, *work, band=16)
    np.testing.assert_allclose(got, area_downsample(img, *work), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum() * (shape[0] * shape[1]) / (work[0] * work[1]), img.sum(), rtol=1e-5)


class _ConstantModel(energy.EnergyModel):
    """An estimator that says every source holds ``2**boost`` times its clip-level energy."""

    def __init__(self, boost: float):
        super().__init__({}, sources.FEATURE_NAMES)
        object.__setattr__(self, "boost", boost)

    def predict(self, features):
        return np.full(len(features), self.boost), np.zeros(len(features))


def test_restoration_is_scaled_to_the_estimate_both_ways():
    linear, ldr, disc = _pano_with_blob(h=256, w=512, cx=300, cy=70, r=9)
    clipped = ldr.max(-1) >= sources.CLIP_CODE
    restored = linear.copy()
    restored[disc] *= 4.0
    found = sources.find_sources(linear, ldr, panorama=True)
    held = found.fill + energy.excess_energy(restored, linear, clipped, found)
    for boost in (0.5, 5.0):  # below and above what the restoration holds (2 stops)
        out, listed = energy.restore_energy(restored.copy(), linear, ldr, panorama=True, weights=_ConstantModel(boost))
        got = found.fill + energy.excess_energy(out, linear, clipped, found)
        np.testing.assert_allclose(got, found.fill * 2.0 ** boost, rtol=1e-4)
        assert listed[0].energy == pytest.approx(found.fill[0] * 2.0 ** boost)
        assert (got[0] > held[0]) == (boost > 2.0)
        np.testing.assert_array_equal(out[~clipped], linear[~clipped])


@pytest.mark.parametrize("ground", [0.01, 0.3])
def test_restore_energy_places_a_suns_core_by_the_sun_rule_and_a_lamps_by_the_lamp_rule(ground):
    # the stretched blob of the test above, above the horizon; with a dark ground it is the sun of
    # an outdoor panorama, with a ground brighter than the sky a lamp of a room
    sun, haze = _disc(60, 200, 12), _disc(78, 200, 12)
    linear = np.full((256, 512, 3), 0.05, np.float32)
    linear[128:] = ground
    linear[sun | haze] = 1.0
    ldr = _encode(linear)
    out, listed = energy.restore_energy(linear.copy(), linear, ldr, panorama=True, weights=_ConstantModel(8.0))
    assert [s.cls for s in listed] == ["sun" if ground < 0.05 else "lamp"]
    peak = np.unravel_index(np.argmax(out[..., 1]), out.shape[:2])
    if ground < 0.05:
        assert sun[peak] and peak[0] < 66, f"sun core at {peak}, the sun is centred at (60, 200)"
    else:
        assert 66 <= peak[0] <= 72, f"lamp core at {peak}, the blob's middle is row 69"
