"""LDR synthesis: exposure, curves (parametric, DoRF, Blender views), codecs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ldr2hdr.evaluation import lighting, synth

VIEWS = ("agx", "filmic", "khronos-pbr-neutral", "standard")


def _studio_light(name: str = "forest") -> Path | None:
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    hits = sorted(root.glob(f"*/datafiles/studiolights/world/{name}.exr"))
    return hits[0] if hits else None


def _has_ocio() -> bool:
    try:
        return synth.ocio_config_path().is_file()
    except synth.Ldr2HdrError:
        return False


needs_ocio = pytest.mark.skipif(not _has_ocio(), reason="Blender's OCIO config (bpy wheel) not installed")


@pytest.fixture(scope="module")
def studio_hdr() -> np.ndarray:
    path = _studio_light("forest")
    if path is None:
        pytest.skip("bpy studio lights not installed")
    import OpenImageIO as oiio

    pixels = oiio.ImageBuf(str(path)).get_pixels(oiio.FLOAT)[..., :3]
    return lighting.area_downsample(np.maximum(pixels, 0.0), 128, 256).astype(np.float32)


@pytest.fixture()
def synthetic_hdr() -> np.ndarray:
    rng = np.random.default_rng(3)
    img = np.exp(rng.normal(-1.0, 1.5, size=(24, 48, 3)))
    img[:4, :6] *= 300.0
    return img.astype(np.float32)


# ----------------------------------------------------------------------------- exposure


def test_clip_fraction_achieved_on_studio_light(studio_hdr):
    for fraction in (0.02, 0.08):
        k = synth.exposure_for_clip_fraction(studio_hdr, fraction)
        achieved = float(np.mean((studio_hdr * k).max(axis=-1) >= 1.0))
        assert achieved == pytest.approx(fraction, abs=0.003)
        _, info = synth.synthesize(studio_hdr, "srgb", fraction, "png")
        assert info["clip_fraction"] == pytest.approx(fraction, abs=0.003)
        assert info["exposure_scale"] == pytest.approx(k)


def test_exposure_rejects_bad_input(synthetic_hdr):
    with pytest.raises(ValueError):
        synth.exposure_for_clip_fraction(synthetic_hdr, 0.0)
    with pytest.raises(ValueError):
        synth.exposure_for_clip_fraction(synthetic_hdr, 1.5)
    with pytest.raises(ValueError):
        synth.exposure_for_clip_fraction(np.zeros((4, 4, 3)), 0.1)


# ----------------------------------------------------------------------------- curves


def test_srgb_roundtrip_and_known_values():
    x = np.linspace(0, 1, 101)
    np.testing.assert_allclose(synth.srgb_decode(synth.srgb_encode(x)), x, atol=1e-12)
    assert float(synth.srgb_encode(np.array(0.18))) == pytest.approx(0.4614, abs=1e-3)


@pytest.mark.parametrize("name", ["srgb", "gamma2.2", "gamma1.8"])
def test_parametric_curves_monotone_and_pinned(name):
    inv = synth.true_inverse_curve(name)
    assert inv.shape == (1024,)
    assert inv[0] == 0.0 and inv[-1] == pytest.approx(1.0)
    assert np.all(np.diff(inv) > 0)
    ramp = np.linspace(0, 1, 257)[None, :, None].repeat(3, axis=2)
    fwd = synth.apply_curve(ramp, name)[0, :, 0]
    assert np.all(np.diff(fwd) > 0)
    # the inverse undoes the forward curve
    np.testing.assert_allclose(np.interp(fwd, synth.GRID, inv), ramp[0, :, 0], atol=2e-3)


@needs_ocio
@pytest.mark.parametrize("name", VIEWS)
def test_view_curves_monotone_and_invert_the_grey_axis(name):
    white_gain, inv = synth.view_response(name)
    assert 0.9 <= white_gain < 1.5
    assert inv[0] == 0.0 and inv[-1] == 1.0
    assert np.all(np.diff(inv) >= 0)
    ramp = np.linspace(0.01, 0.95, 60)
    grey = np.repeat(ramp[None, :, None], 3, axis=2)
    disp = synth.apply_curve(grey, name)[0, :, 1]
    assert np.all(np.diff(disp) > 0)
    recovered = np.interp(disp, synth.GRID, inv)
    # 1024 samples resolve the steep top of a long shoulder (Khronos) only to a few percent
    np.testing.assert_allclose(recovered, ramp, rtol=0.05, atol=2e-3)


@needs_ocio
def test_view_transforms_differ_from_each_other_and_from_srgb():
    curves = {name: synth.view_response(name)[1] for name in ("agx", "filmic", "khronos-pbr-neutral")}
    curves["srgb"] = synth.true_inverse_curve("srgb")
    names = list(curves)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.max(np.abs(curves[a] - curves[b])) > 0.01, (a, b)
    # AgX and Filmic map scene-linear 1 below display white (a shoulder); Standard is sRGB
    assert synth.view_response("agx")[0] > 1.1
    assert synth.view_response("filmic")[0] > 1.1
    assert synth.view_response("standard")[0] == pytest.approx(1.0, abs=0.01)


def test_curve_family_and_unknown_curve():
    assert synth.curve_family("srgb") == "srgb"
    assert synth.curve_family("gamma2.2") == "gamma"
    assert synth.curve_family("dorf-12") == "dorf"
    assert synth.curve_family("agx") == "view"
    with pytest.raises(ValueError):
        synth.curve_family("sepia")


def test_dorf_curves_when_available():
    if not synth.DEFAULT_DORF_PATH.is_file():
        pytest.skip("DoRF data not available")
    names = synth.dorf_test_curve_names()
    assert len(names) == 10 and all(n.startswith("dorf-") for n in names)
    for name in names[:3]:
        inv = synth.true_inverse_curve(name)
        assert inv.shape == (1024,) and np.all(np.diff(inv) >= 0)
        ramp = np.linspace(0, 1, 64)[None, :, None].repeat(3, axis=2)
        fwd = synth.apply_curve(ramp, name)[0, :, 0]
        assert np.all(np.diff(fwd) >= 0) and fwd[-1] == pytest.approx(1.0, abs=1e-3)


# ----------------------------------------------------------------------------- synthesis & codecs


def test_png_synthesis_quantizes_and_marks_clipped(synthetic_hdr):
    ldr, info = synth.synthesize(synthetic_hdr, "srgb", 0.05, "png")
    assert ldr.dtype == np.float32 and ldr.shape == synthetic_hdr.shape
    assert ldr.min() >= 0 and ldr.max() <= 1
    np.testing.assert_allclose(ldr * 255, np.round(ldr * 255), atol=1e-4)
    mask = info["clip_mask"]
    assert mask.dtype == bool and mask.shape == synthetic_hdr.shape[:2]
    assert np.all(ldr[mask].max(axis=-1) == 1.0)
    assert np.all(ldr[~mask].max(axis=-1) < 1.0)
    np.testing.assert_allclose(info["inverse_crf"], synth.true_inverse_curve("srgb"))
    assert info["curve_family"] == "srgb" and info["white_gain"] is None


def test_jpeg_path_close_to_png_but_lossy(studio_hdr):
    png, _ = synth.synthesize(studio_hdr, "gamma2.2", 0.05, "png")
    jpg, info = synth.synthesize(studio_hdr, "gamma2.2", 0.05, "jpeg90")
    assert jpg.dtype == np.float32 and jpg.shape == png.shape
    assert 0.0 <= jpg.min() and jpg.max() <= 1.0
    diff = np.abs(jpg - png)
    assert 0.0 < diff.mean() < 0.02
    assert info["codec"] == "jpeg90"


def test_encode_jpeg_quality_matters():
    rng = np.random.default_rng(0)
    img = rng.random((32, 32, 3)).astype(np.float32)
    hi = np.abs(synth.encode_jpeg(img, 95) - img).mean()
    lo = np.abs(synth.encode_jpeg(img, 20) - img).mean()
    assert hi < lo


@needs_ocio
def test_view_synthesis_uses_normalized_domain(synthetic_hdr):
    ldr, info = synth.synthesize(synthetic_hdr, "agx", 0.05, "png")
    assert info["curve_family"] == "view" and info["white_gain"] > 1
    grey_white = info["inverse_crf"][-1]
    assert grey_white == 1.0
    # pixels below the clip level keep some headroom in display values
    assert np.median(ldr[~info["clip_mask"]].max(axis=-1)) < 0.99


def test_noise_is_deterministic_with_seeded_rng(synthetic_hdr):
    a, _ = synth.synthesize(synthetic_hdr, "srgb", 0.05, "png", np.random.default_rng(7), noise_sigma=0.01)
    b, _ = synth.synthesize(synthetic_hdr, "srgb", 0.05, "png", np.random.default_rng(7), noise_sigma=0.01)
    c, _ = synth.synthesize(synthetic_hdr, "srgb", 0.05, "png", np.random.default_rng(8), noise_sigma=0.01)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_synthesize_rejects_bad_arguments(synthetic_hdr):
    with pytest.raises(ValueError):
        synth.synthesize(synthetic_hdr, "srgb", 0.05, "webp")
    with pytest.raises(ValueError):
        synth.synthesize(synthetic_hdr[..., :2], "srgb", 0.05)
    with pytest.raises(ValueError):
        synth.synthesize(synthetic_hdr, "unknown-curve", 0.05)
