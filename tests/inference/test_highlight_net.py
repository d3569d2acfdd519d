"""The learned highlight network: masked features, panorama padding, blending, weights, API."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ldr2hdr.evaluation import synth
from ldr2hdr.inference.crf.dequantize import soft_saturation_mask
from ldr2hdr.inference.errors import Ldr2HdrError, WeightsError
from ldr2hdr.inference.highlights.learned import restore_highlights_learned
from ldr2hdr.inference.highlights.network import (
    LOG_EPS,
    WEIGHTS_FILE,
    HighlightNet,
    MaskedConv,
    count_parameters,
    load_model,
    model_from_state_dict,
    pad_image,
    save_weights,
)
from ldr2hdr.inference.weights import record_weights_file

torch.set_num_threads(1)


def _model(seed=0, random_head=True):
    torch.manual_seed(seed)
    m = HighlightNet().eval()
    if random_head:
        # the trained-from-scratch head starts at zero; give it weights so outputs vary
        with torch.no_grad():
            m.head.conv.weight.normal_(0, 0.05)
            m.film.weight.normal_(0, 0.05)
    return m


def _scene(h, w, seed=0, clipped=0.08):
    rng = np.random.default_rng(seed)
    base = rng.random((h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
    img = np.kron(base, np.ones((8, 8, 1), np.float32))[:h, :w] * 0.6
    y, x = np.mgrid[:h, :w]
    sun = np.exp(-(((y - h * 0.3) / (h * 0.08)) ** 2 + ((x - w * 0.6) / (h * 0.08)) ** 2))
    img = img + (sun * 50.0)[..., None]
    k = synth.exposure_for_clip_fraction(img, clipped)
    ldr = synth.quantize_png8(synth.srgb_encode(img * k))
    return synth.srgb_decode(ldr).astype(np.float32), soft_saturation_mask(ldr)


def test_parameter_count_and_size_budget():
    n = count_parameters(HighlightNet())
    assert 500_000 <= n <= 1_500_000
    assert n * 4 < 30e6


def test_masked_conv_ignores_saturated_content_and_updates_mask():
    torch.manual_seed(0)
    conv = MaskedConv(4, 8)
    x = torch.randn(1, 4, 12, 12)
    valid = torch.ones(1, 1, 12, 12)
    valid[..., 4:8, 4:8] = 0
    y1, v1 = conv(x, valid, False)
    x2 = x.clone()
    x2[..., 4:8, 4:8] = 1e3  # whatever is under the mask must not matter
    y2, v2 = conv(x2, valid, False)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(v1, v2)
    assert float(v1.min()) >= 0.0 and float(v1.max()) <= 1.0 + 1e-6
    # fully valid stays valid, a hole shrinks: its centre is still invalid, its rim partly valid
    assert torch.allclose(v1[..., 0, 0], torch.tensor(1.0))
    assert 0.0 < float(v1[0, 0, 4, 4]) < 1.0
    ones, _ = conv(x, torch.ones_like(valid), False)
    _, vv = conv(x, torch.ones_like(valid), False)
    torch.testing.assert_close(vv, torch.ones_like(vv))


def test_pad_image_wraps_columns_and_crosses_the_poles():
    x = torch.arange(4 * 8, dtype=torch.float32).view(1, 1, 4, 8)
    p = pad_image(x, 1, True)
    assert p.shape == (1, 1, 6, 10)
    torch.testing.assert_close(p[0, 0, 1:-1, 0], x[0, 0, :, -1])   # left pad = last column
    torch.testing.assert_close(p[0, 0, 1:-1, -1], x[0, 0, :, 0])   # right pad = first column
    # the row above the zenith is row 1 seen from the opposite longitude
    torch.testing.assert_close(p[0, 0, 0, 1:-1], torch.roll(x[0, 0, 1], 4))
    torch.testing.assert_close(p[0, 0, -1, 1:-1], torch.roll(x[0, 0, 2], 4))
    r = pad_image(x, 1, False)
    torch.testing.assert_close(r[0, 0, 1:-1, 0], x[0, 0, :, 0])


def test_untrained_model_output_is_the_documented_blend():
    # Head weights start at zero and bias 0.5, so a fully clipped pixel becomes
    # exp(log(lin + eps) + 0.5); unclipped pixels are returned bit-exactly.
    m = HighlightNet().eval()
    lin = np.full((32, 48, 3), 0.2, np.float32)
    mask = np.zeros((32, 48), np.float32)
    lin[8:16, 8:16] = 1.0
    mask[8:16, 8:16] = 1.0
    out = restore_highlights_learned(lin, mask, panorama=False, weights=m)
    np.testing.assert_array_equal(out[mask == 0], lin[mask == 0])
    np.testing.assert_allclose(out[12, 12], (1.0 + LOG_EPS) * np.exp(0.5), rtol=1e-5)


def test_unclipped_pixels_are_kept_exactly_and_output_is_unclamped():
    lin, mask = _scene(96, 160)
    out = restore_highlights_learned(lin, mask, panorama=False, weights=_model(), tile_size=64, overlap=16)
    assert out.dtype == np.float32 and out.shape == lin.shape
    assert np.all(np.isfinite(out))
    keep = mask == 0
    np.testing.assert_array_equal(out[keep], lin[keep])
    assert not np.shares_memory(out, lin)


def test_no_clipping_returns_a_copy():
    lin = np.random.default_rng(0).random((20, 30, 3), dtype=np.float32) * 0.5
    out = restore_highlights_learned(lin, np.zeros((20, 30), np.float32), panorama=False, weights=_model())
    np.testing.assert_array_equal(out, lin)
    assert not np.shares_memory(out, lin)


@pytest.mark.parametrize("shape", [(37, 53), (50, 100), (16, 16), (1, 70)])
@pytest.mark.parametrize("panorama", [False, True])
def test_odd_shapes(shape, panorama):
    lin, mask = _scene(max(shape[0], 8), shape[1], seed=3)
    lin, mask = lin[: shape[0]], mask[: shape[0]]
    mask[0, 0] = 1.0
    out = restore_highlights_learned(lin, mask, panorama=panorama, weights=_model(), tile_size=64, overlap=16)
    assert out.shape == lin.shape and np.all(np.isfinite(out))


def test_tiled_and_untiled_agree():
    # The network's receptive field is larger than the overlap, so tiles differ a little
    # at their edges; feathering keeps the difference small inside the clipped region.
    lin, mask = _scene(128, 192, seed=1)
    m = _model()
    whole = restore_highlights_learned(lin, mask, panorama=False, weights=m, tile_size=512)
    tiled = restore_highlights_learned(lin, mask, panorama=False, weights=m, tile_size=96, overlap=32)
    sel = mask > 0
    d = np.abs(np.log(tiled[sel] + LOG_EPS) - np.log(whole[sel] + LOG_EPS))
    assert float(np.median(d)) < 0.01
    assert float(d.max()) < 0.15


def test_panorama_is_roll_equivariant_and_seamless():
    lin, mask = _scene(64, 128, seed=2)
    lin = np.roll(lin, 60, axis=1)  # put the sun on the 0/360 seam
    mask = np.roll(mask, 60, axis=1)
    m = _model()
    out = restore_highlights_learned(lin, mask, panorama=True, weights=m)
    for shift in (16, 64):
        rolled = restore_highlights_learned(np.roll(lin, shift, 1), np.roll(mask, shift, 1), panorama=True, weights=m)
        np.testing.assert_allclose(rolled, np.roll(out, shift, 1), rtol=2e-4, atol=1e-5)
    # across the seam the output is as continuous as between any other neighbouring columns
    log = np.log(out + LOG_EPS)
    steps = np.abs(np.diff(log, axis=1, append=log[:, :1])).mean(axis=(0, 2))
    assert steps[-1] <= np.percentile(steps[:-1], 95) + 1e-6


def test_bad_inputs_raise():
    m = _model()
    lin = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(Ldr2HdrError, match="HxWx3"):
        restore_highlights_learned(lin[..., 0], np.zeros((8, 8)), panorama=False, weights=m)
    with pytest.raises(Ldr2HdrError, match="mask"):
        restore_highlights_learned(lin, np.zeros((8, 9)), panorama=False, weights=m)
    with pytest.raises(Ldr2HdrError, match="tile size"):
        restore_highlights_learned(lin, np.ones((8, 8)), panorama=False, weights=m, tile_size=8)
    with pytest.raises(ValueError, match="multiple of 16"):
        m(torch.zeros(1, 3, 20, 32), torch.zeros(1, 1, 20, 32), torch.zeros(1, 96))


def test_weights_round_trip_and_manifest_check(tmp_path):
    m = _model(seed=4)
    path = tmp_path / "highlight_net.safetensors"
    save_weights(m, path)
    with pytest.raises(WeightsError, match="not listed"):
        load_model(path)
    record_weights_file(path, data="test")
    loaded = load_model(path)
    for (k, a), (_, b) in zip(m.state_dict().items(), loaded.state_dict().items()):
        torch.testing.assert_close(a, b, msg=k)
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(WeightsError, match="sha256"):
        load_model(path)


def test_state_dict_mismatch_is_a_weights_error():
    state = _model().state_dict()
    state.pop("head.conv.bias")
    with pytest.raises(WeightsError):
        model_from_state_dict(state)
    small = HighlightNet(channels=(8, 16, 24, 32), global_dim=16).state_dict()
    assert model_from_state_dict(small).channels == (8, 16, 24, 32)


@pytest.mark.skipif(not WEIGHTS_FILE.is_file(), reason="trained weights not installed")
def test_trained_weights_bring_back_energy_on_a_studio_light():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
    import split

    files = [p for p in split.studio_light_files() if p.stem in ("sunset", "forest", "courtyard")]
    if not files:
        pytest.skip("Blender studio lights not available")
    from ldr2hdr.evaluation import lighting
    from ldr2hdr.inference.io import read_image

    ref = read_image(files[0]).pixels
    ref = lighting.area_downsample(ref, 128, 256).astype(np.float32)
    ldr, info = synth.synthesize(ref, "srgb", 0.05, "png")
    lin = synth.srgb_decode(ldr).astype(np.float32)
    mask = soft_saturation_mask(ldr)
    out = restore_highlights_learned(lin, mask, panorama=True)
    clip = info["clip_mask"]
    before = lighting.clipped_energy_error_stops(lin, ref, clip, align_mask=~clip)
    after = lighting.clipped_energy_error_stops(out, ref, clip, align_mask=~clip)
    assert after < before
    # fully clipped pixels come back at least as bright as the clip level (brightest channel)
    assert float(out[mask >= 1].max(axis=-1).min()) >= 0.9


def test_large_images_run_the_network_at_reduced_size():
    # max_side=64 makes a 64x128 panorama run at 32x64; the untrained model's log-increase
    # of 0.5 is upsampled and applied at full resolution; unclipped pixels stay exact.
    lin = np.full((64, 128, 3), 0.3, np.float32)
    mask = np.zeros((64, 128), np.float32)
    lin[16:40, 100:128] = 1.0
    lin[16:40, :20] = 1.0  # one region across the seam
    mask[16:40, 100:128] = 1.0
    mask[16:40, :20] = 1.0
    out = restore_highlights_learned(lin, mask, panorama=True, weights=HighlightNet().eval(), max_side=64)
    np.testing.assert_array_equal(out[mask == 0], lin[mask == 0])
    np.testing.assert_allclose(out[20:36, 104:124], (1 + LOG_EPS) * np.exp(0.5), rtol=1e-4)
    np.testing.assert_allclose(out[20:36, :4], (1 + LOG_EPS) * np.exp(0.5), rtol=1e-4)  # seam stays bright
    same = restore_highlights_learned(lin, mask, panorama=True, weights=HighlightNet().eval(), max_side=None)
    assert np.abs(np.log(out[mask > 0]) - np.log(same[mask > 0])).max() < 0.3


def test_pipeline_progress_rises_through_the_network_tiles():
    from ldr2hdr.inference import pipeline, worker

    ldr = synth.quantize_png8(synth.srgb_encode(np.clip(_scene(128, 256)[0], 0, 1)))
    calls = []
    settings = pipeline.Settings(tile_size=64, panorama="on")
    pipeline.run(ldr, settings, progress=lambda f, m: calls.append((f, m)))
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert sum(m == "restoring highlights" for _, m in calls) > 4  # one report per tile
    seen = []
    worker.run_request(worker.Request("reconstruct", {"tile_size": 64, "panorama": "on"}, pixels=ldr),
                       progress=lambda f, m: seen.append(f))
    assert seen == sorted(seen) and len(seen) > 6 and 0.1 <= seen[2] and seen[-1] <= 0.95


def test_small_images_are_restored_at_the_trained_scale():
    # min_side=128 makes a 32x64 panorama run enlarged 2x (64x128, each pixel repeated 2x2)
    # and area-averaged back: the same numbers as doing that by hand, unclipped pixels exact.
    lin, mask = _scene(32, 64, seed=4)
    m = _model()
    out = restore_highlights_learned(lin, mask, panorama=True, weights=m, min_side=128)
    big = restore_highlights_learned(np.repeat(np.repeat(lin, 2, 0), 2, 1), np.repeat(np.repeat(mask, 2, 0), 2, 1),
                                     panorama=True, weights=m, min_side=None)
    np.testing.assert_allclose(out, big.reshape(32, 2, 64, 2, 3).mean(axis=(1, 3)), rtol=1e-5)
    np.testing.assert_array_equal(out[mask == 0], lin[mask == 0])
    direct = restore_highlights_learned(lin, mask, panorama=True, weights=m, min_side=None)
    assert np.abs(out[mask > 0] - direct[mask > 0]).max() > 1e-3  # the option does something
    # a 512-wide image is already at the trained scale: the default leaves it alone
    lin5, mask5 = _scene(64, 512, seed=5)
    np.testing.assert_array_equal(restore_highlights_learned(lin5, mask5, panorama=False, weights=m),
                                  restore_highlights_learned(lin5, mask5, panorama=False, weights=m, min_side=None))
