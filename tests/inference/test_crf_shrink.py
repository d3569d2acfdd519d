"""The trust in the learned camera curve over sRGB (inference/crf/shrink.py)."""

import shutil

import numpy as np
import pytest

from ldr2hdr.inference import crf
from ldr2hdr.inference.crf import network as crf_net
from ldr2hdr.inference.crf import shrink
from ldr2hdr.inference.errors import WeightsError
from ldr2hdr.inference.weights import WEIGHTS_DIR, record_weights_file

SRGB = crf.srgb_inverse().curves[0].astype(np.float64)


def _save(folder, knots, weights, expected=None):
    from safetensors.numpy import save_file

    path = folder / shrink.FILE_NAME
    arrays = {"knots_log2_rmse": np.asarray(knots, np.float64), "weights": np.asarray(weights, np.float64)}
    if expected is not None:
        arrays["expected_rmse"] = np.asarray(expected, np.float64)
    save_file(arrays, str(path))
    record_weights_file(path, kind="test")
    return path


def test_weight_is_piecewise_linear_in_log_distance():
    w = np.linspace(0.0, 1.0, len(shrink.KNOTS))
    assert shrink.weight(2.0 ** shrink.KNOTS[2], w) == pytest.approx(w[2])
    mid = 2.0 ** (0.5 * (shrink.KNOTS[3] + shrink.KNOTS[4]))
    assert shrink.weight(mid, w) == pytest.approx(0.5 * (w[3] + w[4]))
    assert shrink.weight(1e-9, w) == pytest.approx(w[0]) and shrink.weight(10.0, w) == pytest.approx(w[-1])


def test_shipped_trust_loads_and_grows_with_the_distance_from_srgb():
    w = shrink.load()
    assert w.shape == (len(shrink.KNOTS),)
    assert np.all(np.diff(w) >= 0) and 0.0 <= w[0] and w[-1] <= 1.0
    assert w[-1] > 0.5, "an estimate far from sRGB must be mostly trusted"


def test_blend_and_exact_srgb():
    est = SRGB ** 1.3  # far from sRGB
    d = float(np.sqrt(np.mean((est - SRGB) ** 2)))
    half = np.full(len(shrink.KNOTS), 0.5)
    out, w, dist = shrink.apply(est[None], SRGB, half)
    assert dist == pytest.approx(d) and w == pytest.approx(0.5)
    np.testing.assert_allclose(out[0], SRGB + 0.5 * (est - SRGB))
    out, w, _ = shrink.apply(est[None], SRGB, np.full(len(shrink.KNOTS), shrink.EXACT_BELOW / 2))
    assert w == 0.0 and np.array_equal(out[0], SRGB), "a negligible trust returns sRGB exactly"
    # three channels: one weight from the gray axis, each channel blended with it
    rgb = np.stack([SRGB ** 1.2, SRGB ** 1.3, SRGB ** 1.4])
    out, w, _ = shrink.apply(rgb, SRGB, half)
    assert out.shape == (3, SRGB.size)
    np.testing.assert_allclose(out, SRGB + 0.5 * (rgb - SRGB))


def test_confidence_falls_as_the_expected_error_rises():
    expected = np.linspace(0.02, 0.10, len(shrink.KNOTS))  # error grows with the distance here
    near, far = 2.0 ** shrink.KNOTS[0], 2.0 ** shrink.KNOTS[-1]
    assert shrink.confidence(near, expected, 1.0) == pytest.approx(1 - 0.02 / shrink.CONFIDENCE_ZERO_RMSE)
    assert shrink.confidence(far, expected, 1.0) < shrink.confidence(near, expected, 1.0)
    # the network's own agreement still lowers it, and it stays in [0, 1]
    assert shrink.confidence(near, expected, 0.1) < shrink.confidence(near, expected, 1.0)
    assert shrink.confidence(near, np.full(len(shrink.KNOTS), 1.0), 1.0) == 0.0


def test_shipped_file_has_an_expected_error_per_knot():
    e = shrink.load_expected()
    assert e is not None and e.shape == (len(shrink.KNOTS),) and np.all(e >= 0) and np.all(e < 0.3)


@pytest.mark.parametrize("expected", [-np.ones(len(shrink.KNOTS)), np.ones(3)])
def test_expected_error_is_checked(tmp_path, expected):
    bad = _save(tmp_path, shrink.KNOTS, np.ones(len(shrink.KNOTS)), expected)
    with pytest.raises(WeightsError, match="knots"):
        shrink.load_expected(bad)


def test_trust_file_is_checked(tmp_path):
    bad = _save(tmp_path, np.array(shrink.KNOTS) + 1.0, np.ones(len(shrink.KNOTS)))
    with pytest.raises(WeightsError, match="knots"):
        shrink.load(bad)
    other = tmp_path / "unlisted"
    other.mkdir()
    shutil.copyfile(WEIGHTS_DIR / shrink.FILE_NAME, other / shrink.FILE_NAME)
    with pytest.raises(WeightsError, match="not listed"):
        shrink.load(other / shrink.FILE_NAME)


def _textured_ldr(h=300, w=400, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.5 + 0.35 * np.sin(9 * x + 3 * np.cos(5 * y))[..., None] * np.array([1.0, 0.8, 0.6])
    return np.clip(base + 0.05 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)


@pytest.mark.parametrize("trust", [0.0, 0.4, 1.0])
def test_estimate_applies_the_trust(tmp_path, trust):
    if not crf_net.WEIGHTS_FILE.is_file():
        pytest.skip("trained CRF weights not present")
    ldr = _textured_ldr()
    raw = crf_net.estimate_crf_learned(ldr, shrink=False)
    path = _save(tmp_path, shrink.KNOTS, np.full(len(shrink.KNOTS), trust))
    inv = crf_net.estimate_crf_learned(ldr, shrink_weights=path)
    assert inv.details["trust"] == pytest.approx(trust)
    expected = SRGB + trust * (raw.curves[0].astype(np.float64) - SRGB)
    np.testing.assert_allclose(inv.curves[0], expected, atol=1e-6)
    assert inv.method == ("learned" if trust else "srgb (learned: estimate within its noise of sRGB)")
    # a file without expected errors leaves the network's own confidence
    assert inv.confidence == pytest.approx(inv.details["network_confidence"], abs=1e-4)


def test_estimate_confidence_comes_from_the_expected_error(tmp_path):
    if not crf_net.WEIGHTS_FILE.is_file():
        pytest.skip("trained CRF weights not present")
    ldr = _textured_ldr()
    good = crf_net.estimate_crf_learned(ldr, shrink_weights=_save(tmp_path, shrink.KNOTS, np.ones(len(shrink.KNOTS)),
                                                                 np.full(len(shrink.KNOTS), 0.01)))
    (tmp_path / "b").mkdir()
    bad = crf_net.estimate_crf_learned(ldr, shrink_weights=_save(tmp_path / "b", shrink.KNOTS, np.ones(len(shrink.KNOTS)),
                                                                np.full(len(shrink.KNOTS), 0.1)))
    assert good.confidence > bad.confidence > 0.0
    np.testing.assert_array_equal(good.curves, bad.curves)
