"""Fused per-pixel kernels with a dispatcher: Triton on CUDA, float32 torch references elsewhere.

Public functions:

* :func:`linearize` - inverse-curve lookup + soft saturation mask + log, one pass.
* :func:`blend` - ``((1 - mask) * linear + mask * exp(y)) * scale``, one pass.
* :func:`autocast_context` - half-precision autocast for the network.

Which implementation runs is chosen per call from ``backend=`` or, when that is None, the
``LDR2HDR_KERNELS`` environment variable (``auto`` | ``reference`` | ``triton``, default
``auto``):

* ``auto``: compiled Triton kernels for CUDA tensors when Triton is installed and the GPU
  can run it; the reference everywhere else (CPU, MPS, no Triton, ``TRITON_INTERPRET=1``).
* ``reference``: always the pure-torch reference.
* ``triton``: always Triton; raises :class:`~..errors.KernelUnavailableError` when it cannot
  run (not installed, no supported GPU, or a CPU tensor without ``TRITON_INTERPRET=1``).

Triton itself is imported lazily, the first time a Triton kernel may be needed, so
importing this package never fails or slows down for want of it.

Example:
    >>> ldr = torch.rand(1, 3, 4, 8)                       # (B, 3, H, W) in [0, 1]
    >>> curves = torch.linspace(0, 1, 1024).repeat(3, 1)   # identity inverse curve
    >>> linear, log_linear, mask = linearize(ldr, curves)
    >>> hdr = blend(linear, log_linear, mask, scale=2.0)   # (1, 3, 4, 8) float32
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
from typing import NamedTuple

import numpy as np
import torch

from ..errors import KernelUnavailableError, Ldr2HdrError
from .reference import (
    DEFAULT_THRESHOLD,
    LOG_EPS,
    N_SAMPLES,
    Y_MAX,
    blend_reference,
    linearize_reference,
)

logger = logging.getLogger(__name__)

ENV_VAR = "LDR2HDR_KERNELS"
BACKENDS = ("auto", "reference", "triton")
MIN_CUDA_CAPABILITY = (7, 0)  # Triton's oldest supported NVIDIA architecture (Volta)

__all__ = [
    "BACKENDS", "DEFAULT_THRESHOLD", "ENV_VAR", "LOG_EPS", "N_SAMPLES", "Y_MAX",
    "LinearizeOutput", "autocast_context", "blend", "blend_reference", "linearize",
    "linearize_reference", "requested_backend", "resolve_backend", "triton_unavailable_reason",
]


class LinearizeOutput(NamedTuple):
    """Result of :func:`linearize`; all float32 on the input's device."""

    linear: torch.Tensor
    """``(B, 3, H, W)`` relative linear radiance in [0, 1]."""
    log_linear: torch.Tensor
    """``(B, 3, H, W)`` ``log(linear + eps)`` (natural log)."""
    mask: torch.Tensor
    """``(B, 1, H, W)`` soft saturation mask in [0, 1] (1 = clipped)."""


# --------------------------------------------------------------------------- dispatch


def requested_backend() -> str:
    """The backend named by ``LDR2HDR_KERNELS`` (``auto`` when unset)."""
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in BACKENDS:
        raise Ldr2HdrError(f"{ENV_VAR}={value!r} is not one of {', '.join(BACKENDS)}")
    return value


@functools.lru_cache(maxsize=1)
def _triton_module():
    # Imported on first need only: importing triton costs ~1 s and may be absent.
    from . import triton_kernels

    if triton_kernels.IMPORT_ERROR:
        logger.info("Triton kernels unavailable: %s", triton_kernels.IMPORT_ERROR)
    return triton_kernels


def _cuda_capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


def triton_unavailable_reason(device: torch.device | str) -> str | None:
    """Why the Triton kernels cannot run on tensors of ``device``; None when they can."""
    device = torch.device(device)
    module = _triton_module()
    if not module.AVAILABLE:
        return f"triton is not installed or failed to import ({module.IMPORT_ERROR}); install it with 'pip install triton'"
    if module.INTERPRETED:
        # The interpreter copies through host memory, so any device torch can read works.
        return None
    if device.type == "cpu":
        return ("Triton kernels run on CPU tensors only in the interpreter; set TRITON_INTERPRET=1 "
                "in the environment before the kernels are first used")
    if device.type != "cuda":
        return f"no Triton kernels for {device.type} tensors"
    if not torch.cuda.is_available():
        return "CUDA is not available to torch"
    if torch.version.hip is None and _cuda_capability(device) < MIN_CUDA_CAPABILITY:
        major, minor = _cuda_capability(device)
        return f"GPU compute capability {major}.{minor} is older than the {MIN_CUDA_CAPABILITY[0]}.{MIN_CUDA_CAPABILITY[1]} Triton needs"
    return None


def resolve_backend(device: torch.device | str, backend: str | None = None) -> str:
    """Pick ``"triton"`` or ``"reference"`` for tensors on ``device``.

    Args:
        device: where the data lives.
        backend: ``auto`` | ``reference`` | ``triton``; None reads ``LDR2HDR_KERNELS``.

    Raises:
        KernelUnavailableError: ``triton`` was requested and cannot run on ``device``.
    """
    mode = requested_backend() if backend is None else str(backend).strip().lower()
    if mode not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if mode == "reference":
        return "reference"
    device = torch.device(device)
    if mode == "auto" and device.type != "cuda":
        return "reference"
    reason = triton_unavailable_reason(device)
    if mode == "auto" and reason is None and _triton_module().INTERPRETED:
        # The interpreter is a correctness tool, far slower than the reference: never automatic.
        reason = "TRITON_INTERPRET=1 is set (interpreted kernels are only used when requested)"
    if reason is None:
        return "triton"
    if mode == "triton":
        raise KernelUnavailableError(f"Triton kernels were requested ({ENV_VAR}=triton or backend='triton') "
                                     f"but cannot run on {device.type} tensors: {reason}")
    logger.debug("falling back to the torch reference kernels: %s", reason)
    return "reference"


# --------------------------------------------------------------------------- checks


def _check_image(name: str, t, channels: int, dtypes: tuple) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim != 4 or t.shape[1] != channels:
        raise ValueError(f"{name} must have shape (B, {channels}, H, W), got {tuple(t.shape)}")
    if t.dtype not in dtypes:
        names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{name} must be {names}, got {str(t.dtype).replace('torch.', '')}")


def _curves_tensor(curves, device: torch.device) -> torch.Tensor:
    if hasattr(curves, "per_channel"):  # an InverseCRF
        curves = curves.per_channel()
    if isinstance(curves, np.ndarray):
        curves = torch.from_numpy(np.ascontiguousarray(curves))
    if not isinstance(curves, torch.Tensor):
        raise TypeError(f"curves must be a tensor, an array or an InverseCRF, got {type(curves).__name__}")
    if curves.ndim != 2 or curves.shape[0] not in (1, 3) or curves.shape[1] != N_SAMPLES:
        raise ValueError(f"curves must have shape (1|3, {N_SAMPLES}), got {tuple(curves.shape)}")
    curves = curves.to(device=device, dtype=torch.float32)
    return curves.expand(3, N_SAMPLES).contiguous()


# --------------------------------------------------------------------------- public ops


def linearize(
    ldr: torch.Tensor,
    curves,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    eps: float = LOG_EPS,
    backend: str | None = None,
) -> LinearizeOutput:
    """Undo the camera curve, build the soft saturation mask and take the log, in one pass.

    The same math as ``crf.linearize`` + ``crf.dequantize.soft_saturation_mask`` on (B, C, H, W).

    Args:
        ldr: ``(B, 3, H, W)`` float32 or float16 pixel values in [0, 1] (values outside are
            clipped for the lookup; the mask uses them as given).
        curves: inverse curves ``(3, 1024)`` or ``(1, 1024)`` (tensor or array), or an
            ``InverseCRF``; ``curves[c, i]`` is the linear value of pixel value ``i / 1023``.
        threshold: LDR value in (0, 1) where the mask starts rising.
        eps: positive offset in ``log(linear + eps)`` (see :data:`LOG_EPS`).
        backend: ``auto`` | ``reference`` | ``triton``; None reads ``LDR2HDR_KERNELS``.

    Returns:
        :class:`LinearizeOutput` ``(linear, log_linear, mask)``, float32.

    Raises:
        KernelUnavailableError: Triton was requested and cannot run here.
    """
    _check_image("ldr", ldr, 3, (torch.float32, torch.float16))
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if not (eps > 0.0 and math.isfinite(eps)):
        raise ValueError(f"eps must be positive and finite, got {eps}")
    curves = _curves_tensor(curves, ldr.device)
    if resolve_backend(ldr.device, backend) == "triton" and ldr.numel():
        return LinearizeOutput(*_triton_module().linearize_triton(ldr, curves, threshold, eps))
    return LinearizeOutput(*linearize_reference(ldr, curves, threshold, eps))


def blend(
    linear: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    scale: float = 1.0,
    *,
    y_max: float = Y_MAX,
    backend: str | None = None,
) -> torch.Tensor:
    """Blend the linearized input with the network prediction and apply exposure, in one pass.

    ``hdr = ((1 - mask) * linear + mask * exp(min(y, y_max))) * scale``, computed in float32
    whatever the dtype of ``y``, so a half-precision network output cannot overflow here.

    Args:
        linear: ``(B, 3, H, W)`` float32 relative radiance.
        y: ``(B, 3, H, W)`` float32/float16/bfloat16 network output, natural-log radiance.
        mask: ``(B, 1, H, W)`` float32 in [0, 1].
        scale: exposure scale, ``2 ** stops`` (finite, > 0).
        y_max: clamp on ``y`` before ``exp`` (default :data:`Y_MAX` keeps the result finite
            for every scale up to ``2**32``).
        backend: ``auto`` | ``reference`` | ``triton``; None reads ``LDR2HDR_KERNELS``.

    Returns:
        float32 ``(B, 3, H, W)`` HDR radiance, not clamped above.

    Raises:
        KernelUnavailableError: Triton was requested and cannot run here.
    """
    _check_image("linear", linear, 3, (torch.float32,))
    _check_image("y", y, 3, (torch.float32, torch.float16, torch.bfloat16))
    _check_image("mask", mask, 1, (torch.float32,))
    b, _, h, w = linear.shape
    if y.shape != linear.shape or mask.shape != (b, 1, h, w):
        raise ValueError(f"shapes do not match: linear {tuple(linear.shape)}, y {tuple(y.shape)}, "
                         f"mask {tuple(mask.shape)} (expected mask {(b, 1, h, w)})")
    if not (y.device == linear.device == mask.device):
        raise ValueError(f"tensors on different devices: {linear.device}, {y.device}, {mask.device}")
    scale = float(scale)
    if not (scale > 0.0 and math.isfinite(scale)):
        raise ValueError(f"scale must be positive and finite, got {scale}")
    if resolve_backend(linear.device, backend) == "triton" and linear.numel():
        return _triton_module().blend_triton(linear, y, mask, scale, float(y_max))
    return blend_reference(linear, y, mask, scale, float(y_max))


# --------------------------------------------------------------------------- precision


def autocast_context(device: torch.device | str, dtype: torch.dtype | None):
    """A context manager that runs a network in ``dtype`` on ``device``.

    Args:
        device: where the network runs (``"cuda"``, ``"cpu"``, a ``torch.device``).
        dtype: ``torch.float16`` or ``torch.bfloat16`` for mixed precision; ``None`` or
            ``torch.float32`` for full precision (a no-op context).

    Raises:
        ValueError: any other dtype.
        KernelUnavailableError: bfloat16 requested on a GPU without bfloat16 support.
    """
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    if dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(f"autocast dtype must be float16, bfloat16, float32 or None, got {dtype}")
    device = torch.device(device)
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise KernelUnavailableError("this GPU has no bfloat16 support; use float16")
    return torch.autocast(device_type=device.type, dtype=dtype)
