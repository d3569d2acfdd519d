"""Kernel tests: Triton kernels run in Triton's interpreter on CPU tensors, compiled on CUDA.

Triton decides between the interpreter and the compiler when a kernel is decorated, i.e.
when ``inference.kernels.triton_kernels`` is first imported. The dispatcher imports it
lazily (first Triton call), and pytest loads this file while collecting, before any test
runs, so setting ``TRITON_INTERPRET`` here takes effect even when other test folders were
collected first and imported torch. On a machine with a CUDA GPU the variable is left
alone, so the same tests exercise the compiled kernels (``gpu``-marked parameters).
"""

from __future__ import annotations

import os

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _triton_kernels():
    pytest.importorskip("triton", reason="triton is not installed (it is in the 'test' extra)")
    from ldr2hdr.inference.kernels import triton_kernels

    return triton_kernels


@pytest.fixture(
    params=[
        "cpu",
        pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")]),
    ]
)
def triton_device(request) -> torch.device:
    """A device the Triton kernels run on: CPU through the interpreter, or a CUDA GPU."""
    module = _triton_kernels()
    if request.param == "cpu" and not module.INTERPRETED:
        if HAS_CUDA:
            pytest.skip("compiled Triton on this GPU machine; the cuda parameter covers the kernels")
        pytest.fail("the Triton kernels were imported before TRITON_INTERPRET=1 was set; "
                    "set it in the environment before running the tests")
    return torch.device(request.param)


@pytest.fixture
def triton_kernels():
    """The ``inference.kernels.triton_kernels`` module (skips when triton is missing)."""
    return _triton_kernels()
