"""The highlight model's output stage runs through the kernel dispatcher, and its network
keeps its accuracy in half precision (the real trained weights on a real panorama)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ldr2hdr.evaluation import lighting, metrics, synth
from ldr2hdr.inference.highlights import network as highlight_net
from ldr2hdr.inference.crf.dequantize import soft_saturation_mask
from ldr2hdr.inference.errors import Ldr2HdrError
from ldr2hdr.inference.highlights.learned import network_dtype, restore_highlights_learned
from ldr2hdr.inference.highlights.network import WEIGHTS_FILE
from ldr2hdr.inference.io import read_image

MAX_STOPS_RMSE = 0.05  # the bound on the change half precision may make


def _clipped_panorama(h=64, w=128):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
    import split

    files = [p for p in split.studio_light_files() if p.stem == "sunrise"]
    if not files:
        pytest.skip("Blender studio lights not available")
    ref = lighting.area_downsample(read_image(files[0]).pixels, h, w).astype(np.float32)
    ldr, _ = synth.synthesize(ref, "srgb", 0.05, "png")
    return synth.srgb_decode(ldr).astype(np.float32), soft_saturation_mask(ldr)


def _seeded_model():
    torch.manual_seed(3)
    model = highlight_net.HighlightNet().eval()
    with torch.no_grad():
        model.head.conv.weight.normal_(0, 0.05)
        model.film.weight.normal_(0, 0.05)
    return model


def test_blend_goes_through_the_triton_kernel_when_forced(monkeypatch, triton_kernels):
    lin, mask = _clipped_panorama(32, 64)
    model = _seeded_model()
    monkeypatch.setenv("LDR2HDR_KERNELS", "reference")
    ref = restore_highlights_learned(lin, mask, panorama=True, weights=model)

    calls = []
    original = triton_kernels.blend_triton

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(triton_kernels, "blend_triton", counting)
    monkeypatch.setenv("LDR2HDR_KERNELS", "triton")
    out = restore_highlights_learned(lin, mask, panorama=True, weights=model)
    assert calls, "the model's output stage did not call the Triton blend kernel"
    np.testing.assert_array_equal(out[mask == 0], lin[mask == 0])
    np.testing.assert_allclose(out, ref, rtol=2e-6, atol=1e-7)
    assert float(out[mask > 0].max()) > 1.0  # the (random) network really raised the clipped pixels


@pytest.mark.skipif(not WEIGHTS_FILE.is_file(), reason="trained weights not installed")
def test_trained_network_in_bfloat16_stays_within_005_stops_of_float32():
    lin, mask = _clipped_panorama()
    full = restore_highlights_learned(lin, mask, panorama=True, precision="float32")
    half = restore_highlights_learned(lin, mask, panorama=True, precision="bfloat16")
    sel = mask > 0
    np.testing.assert_array_equal(half[~sel], lin[~sel])
    diff = np.log2(metrics.luminance(half)[sel] + 1e-6) - np.log2(metrics.luminance(full)[sel] + 1e-6)
    stops_rmse = float(np.sqrt(np.mean(diff ** 2)))
    assert 0.0 < stops_rmse <= MAX_STOPS_RMSE, stops_rmse  # > 0: bfloat16 really ran


def test_network_dtype_choices(monkeypatch):
    assert network_dtype("auto", "cpu") is None
    assert network_dtype("float32", "cuda") is None
    assert network_dtype("float16", "cpu") == torch.float16
    assert network_dtype("bfloat16", "cpu") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert network_dtype("auto", "cuda") == torch.float16
    with pytest.raises(Ldr2HdrError, match="precision"):
        network_dtype("float64", "cpu")
