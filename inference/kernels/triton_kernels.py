"""Triton kernels for the memory-bound per-pixel stages, with their launchers.

Each op has three layers: the private ``@triton.jit`` kernel, a launcher (``*_triton``)
that allocates outputs and picks the grid, and the public function in
:mod:`ldr2hdr.inference.kernels`, which validates inputs and dispatches between the
launcher and the float32 reference in :mod:`.reference`.

Triton is optional. This module imports without it (``AVAILABLE`` is then False and
``IMPORT_ERROR`` says why), so the dispatcher can report a clear error at first use.
Whether the kernels run compiled (CUDA) or in Triton's interpreter (CPU tensors) is fixed
when this module is imported: ``TRITON_INTERPRET=1`` must be in the environment before that.
"""

from __future__ import annotations

import contextlib
import logging

import torch

from .reference import N_SAMPLES

logger = logging.getLogger(__name__)

try:
    import triton
    import triton.language as tl
except (ImportError, OSError) as exc:  # OSError: a broken install whose shared libraries fail to load
    triton = None
    tl = None
    IMPORT_ERROR: str | None = f"{type(exc).__name__}: {exc}"
else:
    IMPORT_ERROR = None

AVAILABLE = triton is not None

# Pixels per program. On a GPU 1024 keeps 4 warps busy with 8 floats each per channel;
# the interpreter runs one numpy call per program, so it wants far fewer, larger blocks.
GPU_BLOCK = 1024
INTERPRETER_BLOCK = 16384

if AVAILABLE:

    @triton.jit
    def _linearize_kernel(
        ldr_ptr, curves_ptr, linear_ptr, log_ptr, mask_ptr,
        hw, threshold, mask_range, eps,
        N: tl.constexpr, BLOCK: tl.constexpr,
    ):
        # grid = (pixel blocks, batch); every program handles BLOCK pixels of one image.
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        valid = offs < hw
        image = tl.program_id(1).to(tl.int64) * 3 * hw
        peak = tl.full([BLOCK], float("-inf"), tl.float32)
        for c in tl.static_range(3):
            at = image + c * hw + offs
            x = tl.load(ldr_ptr + at, mask=valid, other=0.0).to(tl.float32)
            peak = tl.maximum(peak, x, propagate_nan=tl.PropagateNan.ALL)
            t = tl.where(x < 0.0, 0.0, tl.where(x > 1.0, 1.0, x)) * (N - 1)
            # Clamping the index both ways keeps a NaN pixel's loads in bounds; NaN still
            # reaches the output through frac.
            i = tl.maximum(tl.minimum(t.to(tl.int32), N - 2), 0)
            frac = t - i.to(tl.float32)
            lo = tl.load(curves_ptr + c * N + i, mask=valid, other=0.0)
            hi = tl.load(curves_ptr + c * N + i + 1, mask=valid, other=0.0)
            lin = lo + frac * (hi - lo)
            tl.store(linear_ptr + at, lin, mask=valid)
            tl.store(log_ptr + at, tl.log(lin + eps), mask=valid)
        m = (peak - threshold) / mask_range
        m = tl.where(m < 0.0, 0.0, tl.where(m > 1.0, 1.0, m))
        tl.store(mask_ptr + tl.program_id(1).to(tl.int64) * hw + offs, m, mask=valid)

    @triton.jit
    def _blend_kernel(
        linear_ptr, y_ptr, mask_ptr, out_ptr,
        hw, scale, y_max,
        BLOCK: tl.constexpr,
    ):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        valid = offs < hw
        b = tl.program_id(1).to(tl.int64)
        m = tl.load(mask_ptr + b * hw + offs, mask=valid, other=0.0).to(tl.float32)
        for c in tl.static_range(3):
            at = b * 3 * hw + c * hw + offs
            lin = tl.load(linear_ptr + at, mask=valid, other=0.0).to(tl.float32)
            y = tl.load(y_ptr + at, mask=valid, other=0.0).to(tl.float32)
            # where() rather than minimum(): NaN must stay NaN, as in the reference.
            y = tl.where(y > y_max, y_max, y)
            hdr = ((1.0 - m) * lin + m * tl.exp(y)) * scale
            tl.store(out_ptr + at, hdr, mask=valid)

    INTERPRETED = type(_blend_kernel).__name__ == "InterpretedFunction"
else:
    INTERPRETED = False


def _block() -> int:
    return INTERPRETER_BLOCK if INTERPRETED else GPU_BLOCK


def _device_guard(t: torch.Tensor):
    # Compiled kernels launch on the current CUDA device, which need not be the tensor's.
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def linearize_triton(
    ldr: torch.Tensor,
    curves: torch.Tensor,
    threshold: float,
    eps: float,
    block: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch the fused linearize kernel. Same contract as ``reference.linearize_reference``.

    ``ldr`` ``(B, 3, H, W)`` float32/float16 and ``curves`` ``(3, 1024)`` float32 on the
    same device; returns float32 ``(linear, log_linear, mask)``.
    """
    ldr = ldr.contiguous()
    curves = curves.contiguous()
    b, _, h, w = ldr.shape
    hw = h * w
    linear = torch.empty(ldr.shape, dtype=torch.float32, device=ldr.device)
    log_linear = torch.empty_like(linear)
    mask = torch.empty((b, 1, h, w), dtype=torch.float32, device=ldr.device)
    block = block or _block()
    with _device_guard(ldr):
        _linearize_kernel[(triton.cdiv(hw, block), b)](
            ldr, curves, linear, log_linear, mask,
            hw, float(threshold), float(1.0 - threshold), float(eps),
            N=N_SAMPLES, BLOCK=block,
        )
    return linear, log_linear, mask


def blend_triton(
    linear: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    scale: float,
    y_max: float,
    block: int | None = None,
) -> torch.Tensor:
    """Launch the fused blend kernel. Same contract as ``reference.blend_reference``.

    ``linear`` ``(B, 3, H, W)``, ``y`` ``(B, 3, H, W)``, ``mask`` ``(B, 1, H, W)`` on one
    device; returns float32 ``(B, 3, H, W)``.
    """
    linear = linear.contiguous()
    y = y.contiguous()
    mask = mask.contiguous()
    b, _, h, w = linear.shape
    hw = h * w
    out = torch.empty(linear.shape, dtype=torch.float32, device=linear.device)
    block = block or _block()
    with _device_guard(linear):
        _blend_kernel[(triton.cdiv(hw, block), b)](
            linear, y, mask, out, hw, float(scale), float(y_max), BLOCK=block,
        )
    return out
