"""Classical highlight expansion: Kovaleski-Oliveira and Masia."""

import numpy as np
import pytest

from ldr2hdr.inference.highlights import classical
from ldr2hdr.inference import crf
from ldr2hdr.inference.crf.dequantize import dequantize
from ldr2hdr.inference.imaging import luminance


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
    y_in, y_out = luminance(lin).ravel(), luminance(out).ravel()
    assert np.all(np.diff(y_out[np.argsort(y_in)]) >= -1e-6)


def test_tiny_images_work():
    for shape in [(1, 1, 3), (1, 7, 3), (5, 1, 3)]:
        ldr = np.ones(shape, np.float32)
        lin = crf.linearize(ldr, crf.srgb_inverse())
        assert classical.expand_kovaleski_oliveira(lin, ldr).shape == shape
        assert dequantize(ldr).shape == shape
