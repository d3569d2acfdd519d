"""Classical steps: saturation mask, dequantization, Kovaleski-Oliveira and Masia expansion."""

import numpy as np
import pytest

from ldr2hdr.inference import classical, crf


def test_soft_mask_known_values():
    ldr = np.array([[[0.5, 0.9, 0.2], [0.975, 0.1, 0.1], [1.0, 1.0, 1.0]]], np.float32)
    m = classical.soft_saturation_mask(ldr, 0.95)
    np.testing.assert_allclose(m[0], [0.0, 0.5, 1.0], atol=1e-5)
    with pytest.raises(ValueError):
        classical.soft_saturation_mask(ldr, 1.0)


def _banded_ramp(w=256, h=32):
    truth = np.tile(np.linspace(0.2, 0.3, w, dtype=np.float32)[None, :, None], (h, 1, 3))
    return truth, np.round(truth * 255) / 255


def test_dequantize_reduces_banding_on_smooth_gradients():
    truth, banded = _banded_ramp()
    out = classical.dequantize(banded)
    inner = np.s_[:, 8:-8]  # away from the replicated border
    err_before = np.sqrt(np.mean((banded[inner] - truth[inner]) ** 2))
    err_after = np.sqrt(np.mean((out[inner] - truth[inner]) ** 2))
    assert err_after < 0.6 * err_before
    # never moves a pixel outside its quantization cell
    assert np.abs(out - banded).max() <= 0.5 / 255 + 1e-6


def test_dequantize_keeps_edges_and_clipped_pixels():
    img = np.zeros((20, 20, 3), np.float32)
    img[:, 10:] = 1.0
    out = classical.dequantize(img)
    np.testing.assert_array_equal(out, img)
    step = np.full((20, 20, 3), 50 / 255, np.float32)
    step[:, 10:] = 200 / 255
    out = classical.dequantize(step)
    assert out[:, 9].max() < 51 / 255 and out[:, 10].min() > 199 / 255


def test_ko_expand_map_is_one_on_clipped_and_fades_out():
    ldr = np.full((64, 128, 3), 0.4, np.float32)
    ldr[28:36, 60:68] = 1.0
    e = classical.expand_map_kovaleski_oliveira(ldr)
    assert e[30, 62] == pytest.approx(1.0)
    assert e[0, 0] < 0.05
    assert 0.0 <= e.min() and e.max() <= 1.0


def test_ko_expansion_brightens_clipped_regions_only_relative():
    ldr = np.full((64, 128, 3), 0.4, np.float32)
    ldr[28:36, 60:68] = 1.0
    lin = crf.linearize(ldr, crf.srgb_inverse())
    hdr = classical.expand_kovaleski_oliveira(lin, ldr, gain=4.0)
    assert hdr[30, 62, 0] == pytest.approx(4.0, rel=1e-3)
    assert hdr[0, 0, 0] == pytest.approx(lin[0, 0, 0], rel=0.2)
    assert hdr.dtype == np.float32 and hdr.max() > 1


def test_ko_wraps_around_for_panoramas():
    rng = np.random.default_rng(4)
    ldr = np.clip(rng.normal(0.6, 0.2, (64, 128, 3)), 0, 1).astype(np.float32)
    ldr[28:36, 0:4] = 1.0  # a light across the seam
    ldr[26:38, -6:] = 0.97  # its halo on the other side
    e = classical.expand_map_kovaleski_oliveira(ldr, wrap=True, sigma_s=12)
    # a panorama has no seam: rolling the input rolls the result
    e_rolled = classical.expand_map_kovaleski_oliveira(np.roll(ldr, 40, axis=1), wrap=True, sigma_s=12)
    np.testing.assert_allclose(np.roll(e, 40, axis=1), e_rolled, atol=0.02)
    # without wrap-around the halo does not see the light across the seam
    e_flat = classical.expand_map_kovaleski_oliveira(ldr, wrap=False, sigma_s=12)
    assert e[32, -1] > e_flat[32, -1] + 0.05


def test_masia_gamma_and_expansion():
    rng = np.random.default_rng(0)
    ldr = rng.random((32, 32, 3)).astype(np.float32)
    lin = crf.linearize(ldr, crf.gamma_inverse(2.2))
    g = classical.masia_gamma(lin, ldr)
    assert 0.5 < g < 4.0
    out = classical.expand_masia(lin, ldr)
    assert out.shape == lin.shape and np.all(np.isfinite(out))
    # luminance order is preserved (monotone expansion)
    y_in, y_out = classical.luminance(lin).ravel(), classical.luminance(out).ravel()
    assert np.all(np.diff(y_out[np.argsort(y_in)]) >= -1e-6)


def test_tiny_images_work():
    for shape in [(1, 1, 3), (1, 7, 3), (5, 1, 3)]:
        ldr = np.ones(shape, np.float32)
        lin = crf.linearize(ldr, crf.srgb_inverse())
        assert classical.expand_kovaleski_oliveira(lin, ldr).shape == shape
        assert classical.dequantize(ldr).shape == shape


def test_dequantize_in_strips_equals_whole_image():
    rng = np.random.default_rng(9)
    truth, banded = _banded_ramp(w=96, h=70)
    banded = np.clip(banded + np.round(rng.normal(0, 1, banded.shape)) / 255 * (rng.random(banded.shape) < 0.1), 0, 1)
    whole = classical.dequantize(banded, strip_rows=1000)
    strips = classical.dequantize(banded, strip_rows=16)
    np.testing.assert_allclose(strips, whole, atol=1e-6)


def test_dequantize_leaves_texture_exactly_alone():
    rng = np.random.default_rng(11)
    texture = np.round(rng.uniform(0.3, 0.6, (40, 40, 3)) * 255) / 255  # steps of many codes
    np.testing.assert_array_equal(classical.dequantize(texture.astype(np.float32)), texture.astype(np.float32))
