"""The Linearize step's pixel work: the soft saturation mask and dequantization."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ldr2hdr.inference.crf import dequantize as dequantize_module
from ldr2hdr.inference.crf.dequantize import dequantize, halo_rows, soft_saturation_mask


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


# ----------------------------------------------------------------------------- exactness


def _reference_dequantize(ldr, bits=8, iterations=4, radius=2):
    """The definition, straightforwardly, on the whole image: torch pools over replicate-padded
    tensors, each mean a column pass then a row pass (what ``dequantize`` computed before it
    worked in tiles). ``dequantize`` must give these very floats."""
    x = np.asarray(ldr, np.float32)
    t = torch.from_numpy(np.ascontiguousarray(x if x.ndim == 3 else x[..., None])).permute(2, 0, 1)[None]
    q, k = 1.0 / (2 ** bits - 1), 2 * radius + 1

    def pad(a):
        return F.pad(a, (radius,) * 4, mode="replicate")

    def mean(a):
        return F.avg_pool2d(F.avg_pool2d(pad(a), (k, 1), stride=1), (1, k), stride=1)

    span = F.max_pool2d(pad(t), k, stride=1) + F.max_pool2d(pad(-t), k, stride=1)
    flat = ((span <= q * 1.001) & (t > 0.0) & (t < 1.0)).float()
    lo, hi = t - 0.5 * q, t + 0.5 * q
    den = mean(flat)
    y = t
    for _ in range(iterations):
        smooth = torch.where(den > 0, mean(y * flat) / den.clamp_min(1e-8), y)
        y = torch.where(flat > 0, torch.minimum(torch.maximum(smooth, lo), hi), t)
    out = y[0].permute(1, 2, 0).numpy()
    return out if x.ndim == 3 else out[..., 0]


def _banded_scene(h, w, seed, channels=3, bits=8):
    """Codes of a smooth scene (wide flat bands) with texture, a hard edge, clipped 0 and top
    codes and a few outliers, as floats on the grid."""
    rng = np.random.default_rng(seed)
    top = 2 ** bits - 1
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    v = 0.45 + 0.03 * np.sin(2.0 * xx + 1.3 * yy + rng.uniform(0, 6))  # ~0.1 code per pixel
    v = v[..., None] * rng.uniform(0.8, 1.2, channels)
    v[:, : w // 5] += rng.uniform(0, 0.1, (h, w // 5, channels))  # texture
    v[h // 2:, w // 2:] += 0.2  # an edge
    v[: h // 6, w - w // 6:] = 0.0  # clipped black
    v[h - h // 7:, : w // 3] = 1.0  # clipped white
    v[rng.random((h, w)) < 0.01] = rng.uniform(0, 1)  # isolated outliers
    return (np.round(np.clip(v, 0, 1) * top) / top).astype(np.float32)


def _same_floats(a, b):
    """Bit-identical float32 arrays (signed zeros and NaN payloads included)."""
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(a.view(np.int32), b.view(np.int32))


@pytest.mark.parametrize("h, w, seed", [(2, 2, 0), (3, 40, 1), (70, 97, 2), (150, 61, 3), (201, 333, 4)])
def test_dequantize_equals_the_definition(h, w, seed):
    x = _banded_scene(h, w, seed)
    out = dequantize(x)
    _same_floats(out, _reference_dequantize(x))
    if h > 50:
        assert np.mean(out != x) > 0.2  # the test means something: many pixels moved


def test_dequantize_equals_the_definition_across_tiles_strips_and_threads(monkeypatch):
    # tiny tiles put tile edges, halos and clamped image edges everywhere
    x = _banded_scene(90, 110, 5)
    expected = _reference_dequantize(x)
    monkeypatch.setattr(dequantize_module, "TILE_ROWS", 7)
    monkeypatch.setattr(dequantize_module, "TILE_COLS", 13)
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            for strip_rows in (5, 16, 512):
                _same_floats(dequantize(x, strip_rows=strip_rows), expected)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("bits, iterations, radius", [(8, 1, 1), (8, 3, 3), (8, 2, 2), (6, 4, 2), (10, 4, 2)])
def test_dequantize_equals_the_definition_for_other_parameters(bits, iterations, radius):
    x = _banded_scene(80, 90, 6, bits=bits)
    _same_floats(dequantize(x, bits=bits, iterations=iterations, radius=radius),
                 _reference_dequantize(x, bits, iterations, radius))


def test_dequantize_equals_the_definition_off_the_grid_and_on_odd_shapes():
    rng = np.random.default_rng(7)
    x = _banded_scene(60, 70, 7)
    off = x + rng.normal(0, 2e-4, x.shape).astype(np.float32)  # off the code grid: the float path
    _same_floats(dequantize(off), _reference_dequantize(off))
    grey = x[..., 1]  # HxW in, HxW out
    _same_floats(dequantize(grey), _reference_dequantize(grey))
    rgba = np.concatenate([x, x[..., :1]], axis=-1)
    _same_floats(dequantize(rgba), _reference_dequantize(rgba))
    broken = x.copy()
    broken[10, 10, 0], broken[40, 50, 2] = np.nan, np.inf  # never flat, passed through
    _same_floats(dequantize(broken), _reference_dequantize(broken))


def test_dequantized_rows_depend_only_on_their_halo():
    # the contract inference.banded relies on: a band dequantized with halo_rows() rows around it
    x = _banded_scene(130, 75, 8)
    whole = dequantize(x)
    halo = halo_rows()
    for r0, r1 in ((0, 17), (17, 64), (40, 41), (100, 130)):
        a, b = max(0, r0 - halo), min(len(x), r1 + halo)
        _same_floats(dequantize(x[a:b])[r0 - a:r1 - a], whole[r0:r1])
