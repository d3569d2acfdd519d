"""Triton kernels against the float32 torch references: odd shapes, extreme values, dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ldr2hdr.inference import crf
from ldr2hdr.inference.kernels import (
    DEFAULT_THRESHOLD,
    LOG_EPS,
    Y_MAX,
    blend,
    blend_reference,
    linearize,
    linearize_reference,
)

ODD_SHAPES = [(1, 3, 17, 31), (1, 3, 1, 1), (1, 3, 129, 257), (2, 3, 513, 1025)]
THR = DEFAULT_THRESHOLD
# Pixel values where the math changes: ends of [0, 1], grid points of the 1024-entry
# curves, and both sides of the mask threshold.
SPECIAL_LDR = [
    0.0, 1.0, 0.5 / 1023, 1 / 1023, 511 / 1023, 1022 / 1023, 1 - 2**-24,
    THR, float(np.nextafter(np.float32(THR), 0)), float(np.nextafter(np.float32(THR), 1)),
    THR - 1e-4, THR + 1e-4, 0.999, 0.9999,
]
# Network log outputs around the clamp and far past float32's exp range.
SPECIAL_Y = [0.0, -1000.0, -88.0, 20.0, Y_MAX - 0.1, Y_MAX, Y_MAX + 0.1, 88.0, 89.0, 1000.0]


def curves3() -> np.ndarray:
    """Three different per-channel curves, so a channel mix-up cannot go unnoticed."""
    rng = np.random.default_rng(3)
    wobbly = np.cumsum(rng.uniform(0.1, 1.0, crf.N_SAMPLES))
    rows = [crf.srgb_inverse().curves[0], crf.gamma_inverse(2.2).curves[0], wobbly]
    return crf.from_samples(np.stack(rows), "test").curves


def ldr_with_specials(shape, dtype, seed=0) -> torch.Tensor:
    """Uniform [0, 1] pixels, with the special values written over the first pixels of each channel."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    flat = x.view(shape[0], 3, -1)
    n = min(flat.shape[-1], len(SPECIAL_LDR))
    for c in range(3):
        # rotate per channel so the peak channel (mask) differs from pixel to pixel
        values = torch.tensor(SPECIAL_LDR[c:] + SPECIAL_LDR[:c])[:n]
        flat[:, c, :n] = values
    return x.to(dtype)


def rel_rms(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float(torch.sqrt(torch.mean((a - b) ** 2)) / torch.sqrt(torch.mean(b**2)).clamp_min(1e-30))


def check(out: torch.Tensor, ref: torch.Tensor, *, max_abs: float, max_rel_rms: float, rel: bool = False):
    assert out.shape == ref.shape and out.dtype == ref.dtype == torch.float32
    assert torch.equal(torch.isnan(out), torch.isnan(ref))
    o, r = out.cpu()[~torch.isnan(ref.cpu())], ref.cpu()[~torch.isnan(ref.cpu())]
    err = (o.double() - r.double()).abs()
    if rel:  # values spanning many orders of magnitude: bound the error relative to each value
        err = err / r.double().abs().clamp_min(1e-30)
    assert float(err.max()) <= max_abs, f"max {'rel' if rel else 'abs'} error {float(err.max()):.3g} > {max_abs}"
    assert rel_rms(o, r) <= max_rel_rms, f"relative RMS error {rel_rms(o, r):.3g} > {max_rel_rms}"


def check_linearize(out, ref):
    linear, log_linear, mask = out
    check(linear, ref[0], max_abs=1e-6, max_rel_rms=1e-6)
    check(log_linear, ref[1], max_abs=2e-5, max_rel_rms=1e-6)
    check(mask, ref[2], max_abs=2e-6, max_rel_rms=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("shape", ODD_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_linearize_kernel_matches_reference(triton_device, shape, dtype):
    ldr = ldr_with_specials(shape, dtype).to(triton_device)
    curves = torch.from_numpy(curves3()).to(triton_device)
    out = linearize(ldr, curves, backend="triton")
    ref = linearize_reference(ldr, curves)
    check_linearize(out, ref)
    assert out.mask.shape == (shape[0], 1, *shape[2:])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
def test_linearize_kernel_extreme_values(triton_device, dtype):
    # Every special value meets every other one across the three channels.
    n = len(SPECIAL_LDR)
    v = torch.tensor(SPECIAL_LDR)
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    ldr = torch.stack([v[(i + c * j) % n] for c in range(3)])[None].to(dtype).to(triton_device)
    curves = torch.from_numpy(curves3()).to(triton_device)
    out = linearize(ldr, curves, backend="triton")
    check_linearize(out, linearize_reference(ldr, curves))
    # The math's anchor points: black -> 0 and log(eps); white -> 1 and mask 1.
    black = (ldr == 0).all(dim=1)
    assert torch.all(out.linear[:, 0][black] == 0)
    assert torch.allclose(out.log_linear[:, 0][black].cpu(), torch.tensor(math.log(LOG_EPS)))
    white = (ldr == 1).all(dim=1)
    assert torch.all(out.linear.permute(0, 2, 3, 1)[white] == 1) and torch.all(out.mask[:, 0][white] == 1)
    below = (ldr.float().amax(dim=1) <= THR)
    assert torch.all(out.mask[:, 0][below] == 0)


def test_linearize_kernel_with_small_blocks(triton_kernels, triton_device):
    # The GPU block size in the interpreter: many programs plus a ragged last one.
    ldr = ldr_with_specials((2, 3, 37, 53), torch.float32, seed=5).to(triton_device)
    curves = torch.from_numpy(curves3()).to(triton_device)
    out = triton_kernels.linearize_triton(ldr, curves, THR, LOG_EPS, block=128)
    check_linearize(out, linearize_reference(ldr, curves))


def test_linearize_kernel_non_contiguous_input(triton_device):
    base = ldr_with_specials((1, 3, 40, 30), torch.float32, seed=2).to(triton_device)
    ldr = base.transpose(2, 3)  # (1, 3, 30, 40), not contiguous
    curves = torch.from_numpy(curves3()).to(triton_device)
    check_linearize(linearize(ldr, curves, backend="triton"), linearize_reference(ldr, curves))


def blend_inputs(shape, y_dtype, device, seed=1):
    g = torch.Generator().manual_seed(seed)
    ldr = torch.rand(shape, generator=g)
    linear, _, _ = linearize_reference(ldr, torch.from_numpy(curves3()))
    mask = torch.rand((shape[0], 1, *shape[2:]), generator=g)
    mask.view(-1)[:3] = torch.tensor([0.0, 1.0, 0.5])[: mask.numel()]
    y = torch.randn(shape, generator=g) * 4
    flat = y.view(shape[0], 3, -1)
    n = min(flat.shape[-1], len(SPECIAL_Y))
    flat[:, :, :n] = torch.tensor(SPECIAL_Y[:n])
    m = mask.view(shape[0], 1, -1)
    m[:, :, :n] = 1.0  # the huge outputs must reach exp, not be masked away
    return linear.to(device), y.to(y_dtype).to(device), mask.to(device)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")  # NaN -> index, then clamped
def test_linearize_kernel_keeps_nan_visible(triton_device):
    ldr = torch.full((1, 3, 2, 3), 0.5)
    ldr[0, 1, 0, 1] = float("nan")
    ldr[0, 0, 1, 2] = 0.99  # and a clipped neighbour that must stay finite
    ldr = ldr.to(triton_device)
    curves = torch.from_numpy(curves3()).to(triton_device)
    out = linearize(ldr, curves, backend="triton")
    ref = linearize_reference(ldr, curves)
    check_linearize(out, ref)  # same NaN pattern, same finite values
    assert torch.isnan(out.linear[0, 1, 0, 1]) and torch.isnan(out.mask[0, 0, 0, 1])
    assert int(torch.isnan(out.linear).sum()) == 1 and int(torch.isnan(out.mask).sum()) == 1


def _check_blend(shape, y_dtype, scale, device):
    linear, y, mask = blend_inputs(shape, y_dtype, device)
    out = blend(linear, y, mask, scale, backend="triton")
    ref = blend_reference(linear, y, mask, scale)
    assert torch.isfinite(ref).all()
    check(out, ref, max_abs=1e-5, max_rel_rms=1e-6, rel=True)


@pytest.mark.parametrize("shape", ODD_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_blend_kernel_matches_reference(triton_device, shape):
    _check_blend(shape, torch.float32, 1.0, triton_device)


@pytest.mark.parametrize("scale", [1.0, 2.0**-8, 2.0**32], ids=["x1", "x2^-8", "x2^32"])
@pytest.mark.parametrize("y_dtype", [torch.float32, torch.float16, torch.bfloat16], ids=["fp32", "fp16", "bf16"])
def test_blend_kernel_dtypes_and_scales(triton_device, y_dtype, scale):
    _check_blend((1, 3, 17, 31), y_dtype, scale, triton_device)


def test_blend_kernel_huge_outputs_stay_finite(triton_device):
    y = torch.tensor(SPECIAL_Y).view(1, 1, 1, -1).expand(1, 3, 2, -1).contiguous()
    linear = torch.full_like(y, 0.25)
    mask = torch.zeros(1, 1, 2, y.shape[-1])
    mask[:, :, 1] = 1.0  # row 0: linear only (0 * exp(huge) must be 0, not NaN); row 1: exp only
    out = blend(linear.to(triton_device), y.to(triton_device), mask.to(triton_device), 2.0**32, backend="triton").cpu()
    assert torch.isfinite(out).all()
    assert torch.all(out[:, :, 0] == 0.25 * 2.0**32)
    expected = torch.exp(y[:, :, 1].clamp(max=Y_MAX).double()) * 2.0**32
    assert torch.allclose(out[:, :, 1].double(), expected, rtol=1e-5, atol=0)


def test_blend_kernel_keeps_nan_visible(triton_device):
    y = torch.tensor([float("nan"), 1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2).contiguous()
    mask = torch.ones(1, 1, 1, 2)
    out = blend(torch.zeros_like(y).to(triton_device), y.to(triton_device), mask.to(triton_device), backend="triton").cpu()
    assert torch.isnan(out[..., 0]).all() and torch.isfinite(out[..., 1]).all()
