"""The torch references implement the pipeline's math (crf.linearize, crf.dequantize.soft_saturation_mask)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ldr2hdr.inference.highlights import network as highlight_net
from ldr2hdr.inference import crf
from ldr2hdr.inference.crf.dequantize import soft_saturation_mask
from ldr2hdr.inference.kernels import LOG_EPS, Y_MAX, blend, linearize

from .test_kernels_vs_reference import SPECIAL_LDR, curves3


def hwc_with_specials(h=23, w=29, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ldr = rng.uniform(0.0, 1.0, (h, w, 3)).astype(np.float32)
    for c in range(3):
        values = SPECIAL_LDR[c:] + SPECIAL_LDR[:c]
        ldr.reshape(-1, 3)[: len(values), c] = values
    return ldr


def to_bchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].contiguous()


def from_bchw(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("threshold", [0.95, 0.8])
def test_reference_linearize_matches_pipeline_math(threshold):
    ldr = hwc_with_specials()
    inv = crf.InverseCRF(curves3(), "test")
    out = linearize(to_bchw(ldr), inv, threshold=threshold, backend="reference")
    expected_linear = crf.linearize(ldr, inv)
    np.testing.assert_allclose(from_bchw(out.linear), expected_linear, rtol=0, atol=1e-7)
    np.testing.assert_allclose(out.mask[0, 0].numpy(), soft_saturation_mask(ldr, threshold), rtol=0, atol=1e-7)
    np.testing.assert_allclose(from_bchw(out.log_linear), np.log(expected_linear.astype(np.float64) + LOG_EPS),
                               rtol=0, atol=1e-5)


def test_reference_linearize_single_curve_applies_to_all_channels():
    ldr = hwc_with_specials(seed=1)
    inv = crf.gamma_inverse(2.2)  # one curve, shape (1, 1024)
    out = linearize(to_bchw(ldr), inv.curves, backend="reference")
    np.testing.assert_allclose(from_bchw(out.linear), crf.linearize(ldr, inv), rtol=0, atol=1e-7)


def test_linearize_identity_curve_is_clip():
    x = torch.tensor([-0.5, 0.0, 0.25, 0.999, 1.0, 1.5]).view(1, 1, 1, 6).expand(1, 3, 1, 6)
    out = linearize(x, torch.linspace(0, 1, 1024)[None], backend="reference")
    assert torch.allclose(out.linear, x.clamp(0, 1), atol=1e-7, rtol=0)
    assert math.isclose(out.log_linear[0, 0, 0, 1].item(), math.log(LOG_EPS), rel_tol=1e-6)


def test_linearize_round_trip_with_apply_crf():
    # linearize(apply_crf(x)) == x: the lookup inverts the forward curve up to interpolation error.
    rng = np.random.default_rng(4)
    linear = rng.uniform(0.0, 1.0, (16, 16, 3)).astype(np.float32)
    inv = crf.srgb_inverse()
    back = linearize(to_bchw(crf.apply_crf(linear, inv)), inv, backend="reference").linear
    np.testing.assert_allclose(from_bchw(back), linear, rtol=0, atol=2e-4)


def test_blend_known_values():
    linear = torch.full((1, 3, 1, 4), 0.5)
    y = torch.tensor([0.0, math.log(3.0), 1000.0, -1000.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    mask = torch.tensor([0.0, 1.0, 1.0, 0.5]).view(1, 1, 1, 4)
    out = blend(linear, y, mask, 2.0, backend="reference")[0, 0, 0]
    expected = torch.tensor([0.5 * 2, 3.0 * 2, math.exp(Y_MAX) * 2, (0.5 * 0.5 + 0.0) * 2])
    assert torch.allclose(out.double(), expected.double(), rtol=1e-6, atol=0)


def test_blend_with_log_linear_and_full_mask_recovers_linear():
    # The network's input log transform and the blend's exp are inverses: y = log(linear + eps).
    ldr = to_bchw(hwc_with_specials(seed=2))
    lin = linearize(ldr, crf.srgb_inverse(), backend="reference")
    out = blend(lin.linear, lin.log_linear, torch.ones_like(lin.mask), backend="reference")
    assert torch.allclose(out, lin.linear + LOG_EPS, rtol=1e-5, atol=1e-9)


def test_same_log_transform_and_clamp_as_the_highlight_network():
    # The fused kernels replace steps of the learned model, so they must use its constants.
    assert LOG_EPS == highlight_net.LOG_EPS and Y_MAX == highlight_net.MAX_LOG
    ldr = to_bchw(hwc_with_specials(seed=3))
    out = linearize(ldr, crf.srgb_inverse(), backend="reference")
    assert torch.allclose(out.log_linear, highlight_net.to_log(out.linear), rtol=0, atol=1e-6)
