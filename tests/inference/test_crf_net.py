"""Learned camera-curve estimator: curve construction, weights safety, fallbacks, known curves."""

import shutil

import numpy as np
import pytest
import torch

from ldr2hdr.evaluation import synth
from ldr2hdr.inference import crf
from ldr2hdr.inference.crf import network as crf_net
from ldr2hdr.inference.errors import WeightsError
from ldr2hdr.inference.weights import record_weights_file

torch.set_num_threads(1)


def _random_model(seed=0, width=8, hidden=32, n_coef=6, head_std=1.0):
    torch.manual_seed(seed)
    model = crf_net.CRFNet(n_coef=n_coef, width=width, hidden=hidden)
    with torch.no_grad():
        model.basis.normal_(0.0, 0.05)
        model.logd_mean.normal_(0.0, 1.0)
        model.coef_scale.uniform_(0.5, 3.0)
        model.head[-1].weight.normal_(0.0, head_std)  # far from the mean curve
    return model.eval()


def _save(model, folder):
    from safetensors.torch import save_file

    path = folder / "crf_net.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    record_weights_file(path, kind="test")
    return path


@pytest.fixture
def random_weights(tmp_path):
    """A random-init network saved with its own manifest (no trained weights needed)."""
    return _save(_random_model(), tmp_path)


def _textured_ldr(h=300, w=400, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.5 + 0.35 * np.sin(9 * x + 3 * np.cos(5 * y))[..., None] * np.array([1.0, 0.8, 0.6])
    return np.clip(base + 0.05 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)


def _assert_valid(curves, strict=False):
    c = np.asarray(curves, np.float64)
    assert np.all(np.isfinite(c))
    assert np.all(c[..., 0] == 0.0) and np.all(c[..., -1] == 1.0)
    steps = np.diff(c, axis=-1)
    assert np.all(steps > 0) if strict else np.all(steps >= 0), "curves must increase"


# ----------------------------------------------------------------------------- construction


@pytest.mark.parametrize("scale", [0.1, 3.0, 30.0])
def test_any_coefficients_give_monotone_pinned_curves(scale):
    g = torch.Generator().manual_seed(1)
    k = 12
    mean = torch.randn(crf_net.N_INTERVALS, generator=g, dtype=torch.float64)
    basis = torch.randn(k, crf_net.N_INTERVALS, generator=g, dtype=torch.float64) * 0.05
    coef = torch.randn(64, 4, k, generator=g, dtype=torch.float64) * scale
    curves = crf_net.coefficients_to_curves(coef, mean, basis, torch.ones(k, dtype=torch.float64))
    assert curves.shape == (64, 4, crf.N_SAMPLES)
    _assert_valid(curves.numpy(), strict=True)  # float64: strictly increasing
    assert float(curves.min()) >= 0.0 and float(curves.max()) <= 1.0
    curves32 = crf_net.coefficients_to_curves(coef.float(), mean.float(), basis.float(), torch.ones(k))
    _assert_valid(curves32.numpy())  # float32: non-decreasing, ends exact


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_network_outputs_are_valid_curves(seed):
    model = _random_model(seed)
    patches = torch.rand(5, 3, crf_net.PATCH, crf_net.PATCH, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        coef = model(patches)
        curves = model.curves(coef)
    assert coef.shape == (5, crf_net.N_HEADS, model.n_coef)
    assert float(coef.abs().max()) > 0.5  # the outputs are genuinely far from the mean
    _assert_valid(curves.numpy())


def test_coefficients_to_curves_gradcheck():
    g = torch.Generator().manual_seed(3)
    n = crf_net.N_INTERVALS
    mean, basis = torch.randn(n, generator=g, dtype=torch.float64), torch.randn(3, n, generator=g, dtype=torch.float64)
    coef = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda c: crf_net.coefficients_to_curves(c, mean, basis * 0.1, torch.ones(3, dtype=torch.float64))[:, ::97],
        (coef,))


def test_patch_features_shape_and_known_values():
    p = torch.zeros(2, 3, 32, 32)
    p[1] = 1.0  # fully clipped patch
    f = crf_net.patch_features(p)
    assert f.shape == (2, crf_net.FEATURE_DIM) and torch.isfinite(f).all()
    scalars = f[:, -6:]
    assert scalars[0, 1] == 1.0 and scalars[0, 0] == 0.0  # black fraction, clipped fraction
    assert scalars[1, 0] == 1.0 and scalars[1, 1] == 0.0
    # histograms: all mass in the first / last bin of every channel (sqrt of frequency = 1)
    hist = f[:, : 3 * crf_net.HIST_BINS].reshape(2, 3, crf_net.HIST_BINS)
    assert torch.all(hist[0, :, 0] == 1.0) and torch.all(hist[1, :, -1] == 1.0)


def test_analysis_image_area_average_and_size():
    h, w = 1024, 1536
    checker = ((np.indices((h, w)).sum(0) % 2).astype(np.float32))[..., None].repeat(3, axis=2)
    t = crf_net.analysis_image(checker)
    assert t.shape == (1, 3, 256, 384)
    np.testing.assert_allclose(t.numpy(), 0.5, atol=1e-6)  # area average, not point sampling
    small = crf_net.analysis_image(np.full((100, 140, 3), 0.3, np.float32))
    assert small.shape == (1, 3, 100, 140)  # not upsampled


def test_extract_patches_cover_the_image():
    img = torch.rand(1, 3, 256, 512)
    p = crf_net.extract_patches(img)
    assert p.shape == (3 * 7, 3, crf_net.PATCH, crf_net.PATCH)
    assert torch.equal(p[-1], img[0, :, -128:, -128:])


# ----------------------------------------------------------------------------- weights


def test_weights_load_strictly_and_are_cached(random_weights):
    a = crf_net.load_model(random_weights)
    b = crf_net.load_model(random_weights)
    assert a is b


def test_tampered_weights_are_refused(tmp_path, random_weights):
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = bad_dir / random_weights.name
    shutil.copyfile(random_weights, bad)
    shutil.copyfile(random_weights.parent / "manifest.json", bad_dir / "manifest.json")
    data = bytearray(bad.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside a tensor
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        crf_net.load_model(bad)


def test_unlisted_weights_are_refused(tmp_path, random_weights):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(random_weights, other / random_weights.name)
    with pytest.raises(WeightsError, match="not listed"):
        crf_net.load_model(other / random_weights.name)


def test_state_dict_must_match_exactly():
    state = _random_model().state_dict()
    crf_net.model_from_state_dict(dict(state))  # the exact set loads
    extra = dict(state, **{"head.9.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match="do not match"):
        crf_net.model_from_state_dict(extra)
    missing = {k: v for k, v in state.items() if k != "head.2.bias"}
    with pytest.raises(WeightsError, match="do not match"):
        crf_net.model_from_state_dict(missing)
    with pytest.raises(WeightsError, match="missing"):
        crf_net.model_from_state_dict({k: v for k, v in state.items() if k != "basis"})


# ----------------------------------------------------------------------------- estimator


def test_estimate_with_random_network(random_weights):
    inv = crf_net.estimate_crf_learned(_textured_ldr(), weights=random_weights)
    assert inv.method == "learned" and inv.channels == 1
    assert 0.0 <= inv.confidence <= 1.0
    _assert_valid(inv.curves)
    d = inv.details
    assert d["patches"] == 15 and 1 <= d["patches_kept"] <= d["patches_used"] <= d["patches"]
    assert d["spread"] >= 0 and "fallback" not in d
    rgb = crf_net.estimate_crf_learned(_textured_ldr(), per_channel=True, weights=random_weights)
    assert rgb.channels == 3
    _assert_valid(rgb.curves)


def test_outlier_patches_are_dropped():
    curves_of = lambda c: c  # noqa: E731 - identity "curves" keep the arithmetic visible
    coef = torch.full((9, 4), 0.5)
    coef[:8] += torch.linspace(-0.001, 0.001, 8)[:, None]
    coef[8] = 5.0
    agg, keep, spread = crf_net._aggregate(coef, curves_of)
    assert keep.tolist() == [True] * 8 + [False]
    np.testing.assert_allclose(agg.numpy(), 0.5, atol=1e-3)
    assert spread < 0.01


@pytest.mark.parametrize("ldr, reason", [
    (np.full((400, 600, 3), 0.42, np.float32), "uniform"),
    (np.random.default_rng(0).random((12, 40, 3)).astype(np.float32), "too small"),
    (np.ones((300, 300, 3), np.float32), "uniform"),
])
def test_documented_fallbacks(ldr, reason):
    # No weights are needed (or loaded) to decide that an image is unusable.
    inv = crf_net.estimate_crf_learned(ldr, weights="/nonexistent/crf_net.safetensors")
    assert inv.method.startswith("srgb (fallback: ") and reason in inv.method
    assert inv.confidence <= 0.1 and reason in inv.details["fallback"]
    np.testing.assert_allclose(inv.curves, crf.srgb_inverse().curves)


def test_mostly_clipped_image_falls_back():
    ldr = _textured_ldr()
    ldr[:, : int(ldr.shape[1] * 0.9)] = 1.0  # 90 % clipped: no patch has half its pixels usable
    inv = crf_net.estimate_crf_learned(ldr, weights="/nonexistent/crf_net.safetensors")
    assert "clipped or black" in inv.method


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError, match="HxWx3"):
        crf_net.estimate_crf_learned(np.zeros((32, 32), np.float32))


# ----------------------------------------------------------------------------- trained weights


@pytest.mark.parametrize("curve", ["gamma2.2", "srgb"])
def test_known_curves_recovered_on_studio_light(curve, studio_light):
    if not crf_net.WEIGHTS_FILE.is_file():
        pytest.skip("trained weights not present (run training/train_crf.py, then eval_crf.py --publish)")
    from ldr2hdr.evaluation.references import read_hdr

    hdr = read_hdr(studio_light("forest"))
    ldr, info = synth.synthesize(hdr, curve, 0.03, "png")
    inv = crf_net.estimate_crf_learned(ldr)
    assert inv.method == "learned"
    err = crf.crf_rmse(inv, info["inverse_crf"])
    assert err < 0.04, f"{curve}: RMSE {err:.4f}"
