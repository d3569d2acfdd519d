"""The Linearize step's pixel work: the soft saturation mask and dequantization."""

import numpy as np
import pytest

from ldr2hdr.inference.crf.dequantize import dequantize, soft_saturation_mask


def test_soft_mask_known_values():
    ldr = np.array([[[0.5, 0.9, 0.2], [0.975, 0.1, 0.1], [1.0, 1.0, 1.0]]], np.float32)
    m = soft_saturation_mask(ldr, 0.95)
    np.testing.assert_allclose(m[0], [0.0, 0.5, 1.0], atol=1e-5)
    with pytest.raises(ValueError):
        soft_saturation_mask(ldr, 1.0)


def _banded_ramp(w=256, h=32):
    truth = np.tile(np.linspace(0.2, 0.3, w, dtype=np.float32)[None, :, None], (h, 1, 3))
    return truth, np.round(truth * 255) / 255


def test_dequantize_reduces_banding_on_smooth_gradients():
    truth, banded = _banded_ramp()
    out = dequantize(banded)
    inner = np.s_[:, 8:-8]  # away from the replicated border
    err_before = np.sqrt(np.mean((banded[inner] - truth[inner]) ** 2))
    err_after = np.sqrt(np.mean((out[inner] - truth[inner]) ** 2))
    assert err_after < 0.6 * err_before
    # never moves a pixel outside its quantization cell
    assert np.abs(out - banded).max() <= 0.5 / 255 + 1e-6


def test_dequantize_keeps_edges_and_clipped_pixels():
    img = np.zeros((20, 20, 3), np.float32)
    img[:, 10:] = 1.0
    out = dequantize(img)
    np.testing.assert_array_equal(out, img)
    step = np.full((20, 20, 3), 50 / 255, np.float32)
    step[:, 10:] = 200 / 255
    out = dequantize(step)
    assert out[:, 9].max() < 51 / 255 and out[:, 10].min() > 199 / 255


def test_dequantize_in_strips_equals_whole_image():
    rng = np.random.default_rng(9)
    truth, banded = _banded_ramp(w=96, h=70)
    banded = np.clip(banded + np.round(rng.normal(0, 1, banded.shape)) / 255 * (rng.random(banded.shape) < 0.1), 0, 1)
    whole = dequantize(banded, strip_rows=1000)
    strips = dequantize(banded, strip_rows=16)
    np.testing.assert_allclose(strips, whole, atol=1e-6)


def test_dequantize_leaves_texture_exactly_alone():
    rng = np.random.default_rng(11)
    texture = np.round(rng.uniform(0.3, 0.6, (40, 40, 3)) * 255) / 255  # steps of many codes
    np.testing.assert_array_equal(dequantize(texture.astype(np.float32)), texture.astype(np.float32))


def test_pipeline_dequantizes_only_up_to_its_size_limit():
    from ldr2hdr.inference import crf, pipeline

    ramp = np.round(np.linspace(0.2, 0.3, 64, dtype=np.float32) * 255) / 255
    ldr = np.repeat(np.repeat(ramp[None, :, None], 32, axis=0), 3, axis=2)
    inv = crf.srgb_inverse()
    plain = crf.linearize(ldr, inv)
    smoothed = crf.linearize(dequantize(ldr), inv)
    assert not np.array_equal(plain, smoothed)
    for limit, expected in ((32 * 64, smoothed), (32 * 64 - 1, plain), (0, smoothed)):
        got, _ = pipeline.linearize(ldr, inv, pipeline.Settings(dequantize_max_pixels=limit))
        np.testing.assert_array_equal(got, expected)
    got, _ = pipeline.linearize(ldr, inv, pipeline.Settings(dequantize=False, dequantize_max_pixels=0))
    np.testing.assert_array_equal(got, plain)
