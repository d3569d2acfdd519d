"""Known-value tests for the evaluation metrics (no external data needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ldr2hdr.evaluation import lighting, metrics


def _scene(h=32, w=64, seed=0):
    """A positive HDR image with ~8 stops of range and a bright 'sun' block."""
    rng = np.random.default_rng(seed)
    img = np.exp(rng.normal(-1.0, 1.2, size=(h, w, 3)))
    img[2:5, 10:14] *= 500.0
    return img.astype(np.float32)


# ----------------------------------------------------------------------------- helpers


def test_luminance_weights_rec709():
    img = np.zeros((1, 3, 3))
    img[0, 0, 0] = img[0, 1, 1] = img[0, 2, 2] = 1.0
    np.testing.assert_allclose(metrics.luminance(img)[0], [0.2126, 0.7152, 0.0722])


def test_solid_angle_sums_to_sphere():
    sa = lighting.equirect_solid_angle(64, 128)
    assert sa.sum() == pytest.approx(4 * math.pi, rel=1e-12)
    assert sa[32, 0] > sa[0, 0]  # equator pixels cover more of the sphere than polar ones


def test_equirect_directions_unit_and_zenith():
    d = lighting.equirect_directions(16, 32)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-12)
    assert d[0, :, 1].min() > 0.9 and d[-1, :, 1].max() < -0.9


def test_fibonacci_sphere_is_balanced():
    n = lighting.fibonacci_sphere(64)
    assert n.shape == (64, 3)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-12)
    assert np.linalg.norm(n.mean(axis=0)) < 0.05


def test_area_downsample_block_average_and_energy():
    img = np.arange(4 * 6 * 3, dtype=np.float64).reshape(4, 6, 3)
    out = lighting.area_downsample(img, 2, 3)
    np.testing.assert_allclose(out[0, 0], img[:2, :2].mean(axis=(0, 1)))
    np.testing.assert_allclose(out[1, 2], img[2:, 4:].mean(axis=(0, 1)))
    odd = lighting.area_downsample(_scene(30, 70), 7, 13)  # non-integer ratios keep the mean
    np.testing.assert_allclose(odd.mean(), _scene(30, 70).astype(np.float64).mean(), rtol=1e-10)
    with pytest.raises(ValueError):
        lighting.area_downsample(img, 8, 3)


def test_is_equirect():
    assert lighting.is_equirect((512, 1024, 3))
    assert not lighting.is_equirect((512, 768, 3))


# ----------------------------------------------------------------------------- alignment & log error


def test_identical_images_have_zero_error():
    ref = _scene()
    assert metrics.align_scale(ref, ref) == pytest.approx(1.0)
    assert metrics.si_log2_rmse(ref, ref) == pytest.approx(0.0, abs=1e-12)
    assert metrics.pu21_psnr(ref, ref) == metrics.PSNR_CAP_DB


def test_scale_invariance():
    ref = _scene()
    pred = 3.0 * ref
    assert metrics.align_scale(pred, ref) == pytest.approx(1.0 / 3.0, rel=1e-6)
    assert metrics.si_log2_rmse(pred, ref) == pytest.approx(0.0, abs=1e-6)
    assert metrics.pu21_psnr(pred, ref) == metrics.PSNR_CAP_DB


def test_align_scale_uses_only_the_valid_mask():
    ref = _scene()
    pred = ref.copy()
    mask = np.zeros(ref.shape[:2], bool)
    mask[:, :32] = True
    pred[:, 32:] *= 100.0  # wrong outside the mask: must not move the scale
    assert metrics.align_scale(pred, ref, mask) == pytest.approx(1.0, rel=1e-6)


def test_si_log2_rmse_known_value():
    ref = np.full((4, 8, 3), 0.5)
    pred = ref.copy()
    pred[:, 4:] *= 2.0  # half the pixels one stop too bright
    rmse = metrics.si_log2_rmse(pred, ref, scale=1.0)
    assert rmse == pytest.approx(math.sqrt(0.5), rel=1e-9)
    mask = np.zeros((4, 8), bool)
    mask[:, 4:] = True
    assert metrics.si_log2_rmse(pred, ref, mask, scale=1.0) == pytest.approx(1.0)
    assert metrics.si_log2_rmse(pred, ref, ~mask, scale=1.0) == pytest.approx(0.0)


def test_si_log2_rmse_floor_limits_black_pixels():
    ref = np.full((4, 4, 3), 1.0)
    pred = ref.copy()
    pred[0, 0] = 0.0  # a black pixel counts as 10 stops (the floor), not infinity
    rmse = metrics.si_log2_rmse(pred, ref, scale=1.0)
    assert rmse == pytest.approx(math.sqrt(metrics.LOG_FLOOR_STOPS**2 / 16), rel=1e-9)


def test_empty_selections_give_nan():
    ref = _scene()
    empty = np.zeros(ref.shape[:2], bool)
    assert math.isnan(metrics.si_log2_rmse(ref, ref, empty))
    assert math.isnan(lighting.clipped_energy_error_stops(ref, ref, empty))
    assert math.isnan(metrics.align_scale(np.zeros_like(ref), ref))
    assert math.isnan(metrics.si_log2_rmse(np.zeros_like(ref), ref))
    assert math.isnan(metrics.crf_rmse(None, np.zeros(1024)))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        metrics.si_log2_rmse(np.ones((4, 4, 3)), np.ones((4, 5, 3)))
    with pytest.raises(ValueError):
        metrics.align_scale(np.ones((4, 4)), np.ones((4, 4)))


# ----------------------------------------------------------------------------- PU21


def test_pu21_encoding_known_values():
    assert float(metrics.pu21_encode(np.array(100.0))) == pytest.approx(256.4, abs=0.05)
    assert metrics.PU21_PEAK == pytest.approx(256.4, abs=0.05)
    assert float(metrics.pu21_encode(np.array(0.005))) == pytest.approx(0.0, abs=1e-6)
    y = np.logspace(-3, 5, 200)
    v = metrics.pu21_encode(y)
    assert np.all(np.diff(v) >= 0)
    assert v[-1] == pytest.approx(float(metrics.pu21_encode(np.array(1e4))))  # clamped above 10000


def test_pu21_psnr_known_value():
    ref = np.full((8, 8, 3), 0.3)  # median maps to 50 cd/m^2
    pred = ref * 2.0  # -> 100 cd/m^2 when not re-aligned
    expected = 20 * math.log10(metrics.PU21_PEAK) - 20 * math.log10(
        float(metrics.pu21_encode(np.array(100.0)) - metrics.pu21_encode(np.array(50.0))))
    assert metrics.pu21_psnr(pred, ref, scale=1.0) == pytest.approx(expected, rel=1e-9)
    assert metrics.pu21_psnr(pred, ref) == metrics.PSNR_CAP_DB  # aligned: identical


def test_pu21_psnr_decreases_with_error():
    ref = _scene()
    rng = np.random.default_rng(1)
    small = ref * np.exp(rng.normal(0, 0.05, ref.shape))
    large = ref * np.exp(rng.normal(0, 0.5, ref.shape))
    assert metrics.pu21_psnr(small, ref) > metrics.pu21_psnr(large, ref)


# ----------------------------------------------------------------------------- lighting


def test_irradiance_of_constant_map_is_pi_L():
    pano = np.ones((64, 128, 3)) * np.array([1.0, 2.0, 0.5])
    e = lighting.irradiance_map(pano, lighting.fibonacci_sphere(64))
    np.testing.assert_allclose(e, np.pi * np.array([1.0, 2.0, 0.5])[None, :].repeat(64, 0), rtol=2e-3)


def test_irradiance_of_zenith_sun():
    pano = np.zeros((32, 64, 3))
    pano[0, :] = 1.0  # the polar cap of the top row
    cap = lighting.equirect_solid_angle(32, 64)[0].sum()
    e = lighting.irradiance_map(pano, np.array([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]), size=(32, 64))
    # Facing the cap: about the cap's solid angle (cos ~ 1); facing away: nothing.
    assert e[0, 0] == pytest.approx(cap, rel=0.01)
    assert e[1, 0] == 0.0


def test_irradiance_error_values():
    ref = _scene(64, 128)
    assert lighting.irradiance_error(ref, ref) == pytest.approx(0.0, abs=1e-12)
    assert lighting.irradiance_error(3 * ref, ref) == pytest.approx(0.0, abs=1e-6)  # aligned away
    assert lighting.irradiance_error(2 * ref, ref, scale=1.0) == pytest.approx(1.0, rel=1e-9)


def test_clipped_energy_one_stop():
    ref = _scene(32, 64)
    clip = np.zeros(ref.shape[:2], bool)
    clip[2:5, 10:14] = True
    pred = ref.copy()
    pred[clip] *= 2.0
    assert lighting.clipped_energy_error_stops(pred, ref, clip, align_mask=~clip) == pytest.approx(1.0, rel=1e-6)
    pred[clip] = ref[clip] * 0.5
    assert lighting.clipped_energy_log2_ratio(pred, ref, clip, scale=1.0) == pytest.approx(-1.0)
    assert lighting.clipped_energy_error_stops(pred, ref, clip, scale=1.0) == pytest.approx(1.0)


def test_clipped_energy_uses_solid_angle_on_panoramas():
    ref = np.ones((32, 64, 3))
    clip = np.zeros((32, 64), bool)
    clip[0, :] = True  # polar row (small solid angle)
    clip[16, :] = True  # equator row (large solid angle)
    pred = ref.copy()
    pred[0, :] = 4.0  # only the polar row is wrong
    pano = lighting.clipped_energy_log2_ratio(pred, ref, clip, scale=1.0, panorama=True)
    flat = lighting.clipped_energy_log2_ratio(pred, ref, clip, scale=1.0, panorama=False)
    assert flat == pytest.approx(math.log2(2.5))
    assert 0 < pano < 0.2 < flat


# ----------------------------------------------------------------------------- curves


def test_crf_rmse_known_values():
    grid = np.linspace(0, 1, 1024)
    assert metrics.crf_rmse(grid, grid) == 0.0
    assert metrics.crf_rmse(grid, grid + 0.1) == pytest.approx(0.1)
    three = np.stack([grid, grid + 0.2, grid - 0.2])  # channel mean is the grid
    assert metrics.crf_rmse(three, grid) == pytest.approx(0.0, abs=1e-12)

    class Curve:
        curves = np.stack([grid + 0.05])

    assert metrics.crf_rmse(Curve(), grid) == pytest.approx(0.05)


def test_pu21_precomputed_reference_encoding_matches():
    ref = _scene()
    pred = ref * np.exp(np.random.default_rng(2).normal(0, 0.3, ref.shape))
    enc = metrics.pu21_reference_encoding(ref)
    assert metrics.pu21_psnr(pred, ref, reference_encoding=enc) == pytest.approx(metrics.pu21_psnr(pred, ref))
    assert metrics.pu21_reference_encoding(np.zeros((4, 4, 3))) is None


# ----------------------------------------------------------------------------- sphere renders


def test_spheres_under_a_constant_map_show_its_radiance():
    from ldr2hdr.evaluation import lighting

    pano = np.full((64, 128, 3), 0.5)
    r = lighting.render_spheres(pano, size=16)
    # white Lambertian under uniform radiance L shows L; the normalised lobe also gives L (up to
    # the lobe's part below the horizon of the map grid, a few %)
    np.testing.assert_allclose(r["diffuse"], 0.5, rtol=0.02)
    np.testing.assert_allclose(r["glossy"], 0.5, rtol=0.05)


def test_sphere_render_errors_separate_scale_from_shape():
    from ldr2hdr.evaluation import lighting

    rng = np.random.default_rng(1)
    pano = rng.uniform(0.1, 1.0, (64, 128, 3))
    pano[10:12, 30:32] = 500.0  # a small sun up and to one side
    ref = lighting.render_spheres(pano)
    assert lighting.render_errors(ref["glossy"], ref["glossy"]) == (0.0, 0.0)
    rel, si = lighting.render_errors(2 * ref["diffuse"], ref["diffuse"])
    assert rel == pytest.approx(1.0) and si == pytest.approx(0.0, abs=1e-12)
    # losing the sun shows in both renders, most in the glossy one
    no_sun = pano.copy()
    no_sun[10:12, 30:32] = 1.0
    got = lighting.render_spheres(no_sun)
    d = lighting.render_errors(got["diffuse"], ref["diffuse"])
    g = lighting.render_errors(got["glossy"], ref["glossy"])
    assert d[0] > 0.3 and g[0] > 0.3 and d[1] > 0.05
