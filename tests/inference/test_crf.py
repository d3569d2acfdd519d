"""Camera-curve core: known values, round trips, monotonicity, fitting, the PCA basis."""

import json

import numpy as np
import pytest

from ldr2hdr.inference import crf
from ldr2hdr.inference.errors import Ldr2HdrError, WeightsError


def test_srgb_known_values():
    inv = crf.srgb_inverse()
    g = inv.gray
    assert g[0] == pytest.approx(0.0, abs=1e-6) and g[-1] == pytest.approx(1.0, abs=1e-6)
    # 0.5 encoded sRGB is 0.21404 linear (IEC 61966-2-1)
    assert crf.linearize(np.full((1, 1, 3), 0.5, np.float32), inv)[0, 0, 0] == pytest.approx(0.21404, abs=2e-4)
    assert crf.srgb_to_linear(0.04045) == pytest.approx(0.04045 / 12.92)


def test_gamma_known_values():
    inv = crf.gamma_inverse(2.2)
    x = np.array([[[0.25, 0.5, 0.75]]], np.float32)
    np.testing.assert_allclose(crf.linearize(x, inv), x ** 2.2, atol=2e-4)


@pytest.mark.parametrize("name", ["srgb", "gamma2.2", "gamma1.8", "linear"])
def test_round_trip(name):
    inv = crf.parametric_inverse(name)
    rng = np.random.default_rng(0)
    x = rng.random((16, 9, 3)).astype(np.float32)
    np.testing.assert_allclose(crf.apply_crf(crf.linearize(x, inv), inv), x, atol=1e-4)
    lin = rng.random((16, 9, 3)).astype(np.float32)
    np.testing.assert_allclose(crf.linearize(crf.apply_crf(lin, inv), inv), lin, atol=2e-3)


def test_apply_crf_clips_above_one():
    inv = crf.srgb_inverse()
    out = crf.apply_crf(np.array([[[2.0, 1.0, 50.0]]], np.float32), inv)
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


def test_per_channel_curves_apply_per_channel():
    curves = np.stack([crf.GRID ** 1.0, crf.GRID ** 2.0, crf.GRID ** 3.0])
    inv = crf.from_samples(curves, "test")
    out = crf.linearize(np.full((2, 2, 3), 0.5, np.float32), inv)
    np.testing.assert_allclose(out[0, 0], [0.5, 0.25, 0.125], atol=1e-3)


def test_from_samples_makes_monotone_with_fixed_ends():
    rng = np.random.default_rng(1)
    y = np.cumsum(rng.normal(0, 0.05, crf.N_SAMPLES)) + 0.3
    inv = crf.from_samples(y, "noisy")
    g = inv.curves[0]
    assert np.all(np.diff(g) >= 0)
    assert g[0] == pytest.approx(0.0, abs=1e-6) and g[-1] == pytest.approx(1.0, abs=1e-6)


def test_from_samples_resamples_short_curves():
    inv = crf.from_samples(np.linspace(0, 1, 256) ** 2, "short")
    assert inv.curves.shape == (1, crf.N_SAMPLES)
    assert inv.gray[512] == pytest.approx((512 / 1023) ** 2, abs=1e-3)


def test_inverse_crf_rejects_bad_shapes():
    with pytest.raises(ValueError):
        crf.InverseCRF(np.zeros((2, crf.N_SAMPLES)), "bad")
    with pytest.raises(ValueError):
        crf.InverseCRF(np.full((1, crf.N_SAMPLES), np.nan), "bad")


def test_json_round_trip():
    inv = crf.gamma_inverse(2.4)
    data = json.loads(json.dumps(inv.to_json_dict()))
    assert len(data["inverse_crf"]) == 1024 and data["method"] == "gamma2.4"
    back = crf.InverseCRF.from_json_dict(data)
    assert crf.crf_rmse(back, inv) < 1e-5


def test_parametric_names():
    with pytest.raises(Ldr2HdrError):
        crf.parametric_inverse("vivid")
    with pytest.raises(Ldr2HdrError):
        crf.parametric_inverse("gamma99")


def test_crf_rmse_known_value():
    a = np.zeros(crf.N_SAMPLES)
    assert crf.crf_rmse(a, a + 0.1) == pytest.approx(0.1)


def test_dorf_split_is_the_common_one():
    train, test = crf.dorf_split(201)
    assert len(train) == 191 and len(test) == 10 and not set(train) & set(test)
    order = np.arange(201)
    np.random.RandomState(730).shuffle(order)
    assert sorted(order[-10:]) == list(test)


def test_pca_basis_loads_and_is_orthonormal():
    mean, comps = crf.load_pca_basis()
    assert mean.shape == (crf.N_SAMPLES,) and comps.shape[1] == crf.N_SAMPLES and comps.shape[0] >= 5
    np.testing.assert_allclose(comps @ comps.T, np.eye(comps.shape[0]), atol=1e-4)
    # the mean of measured curves is a plausible response: monotone, from ~0 to ~1
    assert mean[0] == pytest.approx(0, abs=0.02) and mean[-1] == pytest.approx(1, abs=0.02)


@pytest.mark.parametrize("gamma", [1.8, 2.2, 2.6])
def test_fit_recovers_known_curves(gamma):
    rng = np.random.default_rng(2)
    x = rng.random(300)
    fit = crf.fit_inverse_crf(x, x ** gamma)
    assert crf.crf_rmse(fit, crf.gamma_inverse(gamma)) < 0.01


def test_fit_recovers_srgb_from_few_noisy_samples():
    rng = np.random.default_rng(3)
    x = rng.random(40)
    y = crf.srgb_to_linear(x) + rng.normal(0, 0.005, x.size)
    fit = crf.fit_inverse_crf(x, y)
    assert crf.crf_rmse(fit, crf.srgb_inverse()) < 0.01
    assert np.all(np.diff(fit.gray) >= 0)


def test_tampered_basis_is_refused(tmp_path):
    import shutil

    bad = tmp_path / "crf_pca.safetensors"
    shutil.copy(crf.PCA_BASIS_FILE, bad)
    shutil.copy(crf.PCA_BASIS_FILE.parent / "manifest.json", tmp_path / "manifest.json")
    data = bytearray(bad.read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        crf.load_pca_basis(bad)


def test_pickle_is_refused(tmp_path):
    import pickle

    p = tmp_path / "model.safetensors"
    p.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(WeightsError, match="pickle"):
        crf.load_pca_basis(p)


def test_linearize_in_place_gives_the_same_pixels():
    """``out=`` (the pipeline passes the dequantized copy itself) must not change a single value."""
    rng = np.random.default_rng(3)
    ldr = rng.random((300, 40, 3)).astype(np.float32)  # more rows than one band of the lookup
    inv = crf.InverseCRF(np.stack([np.linspace(0, 1, 1024) ** g for g in (2.0, 2.2, 2.6)]).astype(np.float32), "test")
    ldr[0, :5, 0] = [0.0, 1.0, 1.2, -0.1, 0.999999]  # ends and out-of-range values clamp
    expected = crf.linearize(ldr, inv)
    from ldr2hdr.inference.crf.curves import _lookup  # the plain definition the banded scratch path must equal

    for c in range(3):
        np.testing.assert_array_equal(expected[..., c], _lookup(ldr[..., c], inv.per_channel().astype(np.float32)[c]))
    work = ldr.copy()
    got = crf.linearize(work, inv, out=work)
    assert got is work
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError):
        crf.linearize(ldr, inv, out=np.empty((300, 40, 3), np.float64))
