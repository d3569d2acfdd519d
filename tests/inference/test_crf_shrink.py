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


# ----------------------------------------------------------------------------- camera in EXIF


@pytest.fixture(scope="module")
def srgb_photo():
    """An 8-bit plain-sRGB photo of a real HDR (the network's estimate is near sRGB, so the trust
    is small and the blend differs from the network's own curve)."""
    from conftest import studio_light_path

    from ldr2hdr.evaluation import synth
    from ldr2hdr.evaluation.references import read_hdr

    ldr, _ = synth.synthesize(read_hdr(studio_light_path("forest")), "srgb", 0.03, "png")
    return ldr


def test_a_camera_in_exif_keeps_the_networks_curve(srgb_photo, tmp_path):
    from ldr2hdr.inference import cli, io, pipeline
    from ldr2hdr.inference.errors import Ldr2HdrError

    blended = crf_net.estimate_crf_learned(srgb_photo)
    network = crf_net.estimate_crf_learned(srgb_photo, shrink=False)
    assert crf.crf_rmse(blended, network) > 0.005, "the fixture must tell the two apart"
    camera = io.ExifInfo(camera="Canon EOS 5D Mark II")
    no_camera = io.ExifInfo(exposure_time=0.01)

    auto = pipeline.estimate_crf(srgb_photo, exif=camera)
    np.testing.assert_array_equal(auto.curves, network.curves)
    assert "camera in EXIF" in auto.method and auto.details["camera"] == "Canon EOS 5D Mark II"
    for exif in (None, no_camera):  # without a camera nothing changes
        np.testing.assert_array_equal(pipeline.estimate_crf(srgb_photo, exif=exif).curves, blended.curves)
    forced = pipeline.estimate_crf(srgb_photo, pipeline.Settings(crf_trust="srgb-blend"), exif=camera)
    np.testing.assert_array_equal(forced.curves, blended.curves)
    alone = pipeline.estimate_crf(srgb_photo, pipeline.Settings(crf_trust="network"))
    np.testing.assert_array_equal(alone.curves, network.curves)
    assert alone.method == "learned"
    with pytest.raises(Ldr2HdrError, match="crf trust"):
        pipeline.Settings(crf_trust="camera")

    # end to end: the JPEG's own EXIF, and --crf-trust
    from conftest import write_with_oiio

    path = write_with_oiio(tmp_path / "canon.jpg", np.round(srgb_photo * 255).astype(np.uint8),
                           {"Make": "Canon", "Model": "Canon EOS 5D Mark II"})
    assert cli.main(["estimate-crf", str(path), "-o", str(tmp_path / "a"), "-q"]) == 0
    assert "camera in EXIF" in (tmp_path / "a" / "canon.crf.json").read_text()
    assert cli.main(["estimate-crf", str(path), "-o", str(tmp_path / "b"), "-q", "--crf-trust", "srgb-blend"]) == 0
    assert "camera in EXIF" not in (tmp_path / "b" / "canon.crf.json").read_text()


def test_the_harness_camera_method_runs_the_networks_curve(srgb_photo):
    from ldr2hdr.evaluation import methods

    small = np.ascontiguousarray(srgb_photo[::2, ::2])
    assert crf.crf_rmse(crf_net.estimate_crf_learned(small), crf_net.estimate_crf_learned(small, shrink=False)) > 0.005
    _, inv = methods.get_method("ldr2hdr-learned-camera").fn(small, {"panorama": True})
    np.testing.assert_array_equal(inv.curves, crf_net.estimate_crf_learned(small, shrink=False).curves)
    _, inv = methods.get_method("ldr2hdr-learned").fn(small, {"panorama": True})
    np.testing.assert_array_equal(inv.curves, crf_net.estimate_crf_learned(small).curves)
