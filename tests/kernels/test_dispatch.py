"""Dispatcher: auto falls back to the reference off CUDA; a forced Triton that cannot run raises."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from ldr2hdr.inference import kernels
from ldr2hdr.inference.errors import KernelUnavailableError, Ldr2HdrError
from ldr2hdr.inference.kernels import blend, linearize, resolve_backend

CURVES = torch.linspace(0, 1, 1024)[None] ** 2.2


@pytest.fixture
def launches(monkeypatch, triton_kernels):
    """Counts Triton launches (still running them) per op."""
    counts = {"linearize": 0, "blend": 0}

    def spy(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(triton_kernels, "linearize_triton", spy("linearize", triton_kernels.linearize_triton))
    monkeypatch.setattr(triton_kernels, "blend_triton", spy("blend", triton_kernels.blend_triton))
    return counts


@pytest.fixture
def no_triton(monkeypatch, triton_kernels):
    """Pretend triton failed to import."""
    monkeypatch.setattr(triton_kernels, "AVAILABLE", False)
    monkeypatch.setattr(triton_kernels, "IMPORT_ERROR", "ModuleNotFoundError: No module named 'triton'")


@pytest.fixture
def fake_gpu(monkeypatch, triton_kernels):
    """Pretend a CUDA GPU of compute capability 9.0 with compiled (not interpreted) Triton."""
    monkeypatch.setattr(triton_kernels, "INTERPRETED", False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(kernels, "_cuda_capability", lambda device: (9, 0))


def run_both(backend=None, device="cpu"):
    ldr = torch.rand(1, 3, 5, 7, device=device)
    out = linearize(ldr, CURVES, backend=backend)
    hdr = blend(out.linear, out.log_linear, out.mask, backend=backend)
    return out, hdr


def test_auto_uses_reference_on_cpu(launches, monkeypatch):
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    run_both()
    run_both("auto")
    assert launches == {"linearize": 0, "blend": 0}
    assert resolve_backend("cpu") == "reference"


@pytest.mark.parametrize("how", ["env", "argument"])
def test_forced_triton_runs_the_kernels(launches, monkeypatch, triton_device, how):
    if how == "env":
        monkeypatch.setenv(kernels.ENV_VAR, "triton")
    run_both(None if how == "env" else "triton", triton_device)
    assert launches == {"linearize": 1, "blend": 1}


def test_argument_overrides_environment(launches, monkeypatch):
    monkeypatch.setenv(kernels.ENV_VAR, "triton")
    run_both("reference")
    assert launches == {"linearize": 0, "blend": 0}


def test_forced_reference_never_needs_triton(no_triton, fake_gpu, monkeypatch):
    monkeypatch.setenv(kernels.ENV_VAR, "reference")
    assert resolve_backend("cuda") == "reference"
    run_both()


def test_forced_triton_without_triton_raises(no_triton, monkeypatch):
    monkeypatch.setenv(kernels.ENV_VAR, "triton")
    for device in ("cpu", "cuda"):
        with pytest.raises(KernelUnavailableError) as info:
            resolve_backend(device)
        message = str(info.value)
        assert "\n" not in message and "pip install triton" in message and "No module named 'triton'" in message
    with pytest.raises(KernelUnavailableError):
        run_both()


def test_auto_without_triton_falls_back(no_triton, fake_gpu, launches):
    assert resolve_backend("cuda", "auto") == "reference"
    out, hdr = run_both("auto")
    assert torch.isfinite(hdr).all() and launches == {"linearize": 0, "blend": 0}


def test_forced_triton_on_cpu_without_interpreter_raises(triton_kernels, monkeypatch):
    monkeypatch.setattr(triton_kernels, "INTERPRETED", False)
    with pytest.raises(KernelUnavailableError, match="TRITON_INTERPRET=1"):
        run_both("triton")


def test_auto_picks_triton_on_a_supported_gpu(fake_gpu):
    assert resolve_backend("cuda", "auto") == "triton"
    assert resolve_backend(torch.device("cuda", 0), "triton") == "triton"
    assert resolve_backend("cpu", "auto") == "reference"


def test_auto_never_picks_the_interpreter(fake_gpu, triton_kernels, monkeypatch):
    monkeypatch.setattr(triton_kernels, "INTERPRETED", True)
    assert resolve_backend("cuda", "auto") == "reference"
    assert resolve_backend("cuda", "triton") == "triton"


def test_old_gpu_falls_back_in_auto_and_raises_when_forced(fake_gpu, monkeypatch):
    monkeypatch.setattr(kernels, "_cuda_capability", lambda device: (6, 1))
    assert resolve_backend("cuda", "auto") == "reference"
    with pytest.raises(KernelUnavailableError, match="capability 6.1"):
        resolve_backend("cuda", "triton")


def test_other_devices_use_the_reference(fake_gpu):
    assert resolve_backend("mps", "auto") == "reference"
    with pytest.raises(KernelUnavailableError, match="mps"):
        resolve_backend("mps", "triton")


def test_bad_backend_names(monkeypatch):
    monkeypatch.setenv(kernels.ENV_VAR, "fast")
    with pytest.raises(Ldr2HdrError, match="LDR2HDR_KERNELS"):
        run_both()
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("cpu", "cuda")


def test_empty_images_skip_the_launch(launches, triton_device):
    ldr = torch.zeros(1, 3, 0, 5, device=triton_device)
    out = linearize(ldr, CURVES, backend="triton")
    assert out.linear.shape == (1, 3, 0, 5) and out.mask.shape == (1, 1, 0, 5)
    assert blend(out.linear, out.log_linear, out.mask, backend="triton").shape == (1, 3, 0, 5)
    assert launches == {"linearize": 0, "blend": 0}


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: linearize(torch.rand(3, 4, 4), CURVES), ValueError, r"\(B, 3, H, W\), got \(3, 4, 4\)"),
        (lambda: linearize(torch.rand(1, 4, 4, 4), CURVES), ValueError, r"got \(1, 4, 4, 4\)"),
        (lambda: linearize(torch.rand(1, 3, 4, 4).double(), CURVES), TypeError, "got float64"),
        (lambda: linearize(torch.rand(1, 3, 4, 4), CURVES[:, :512]), ValueError, r"got \(1, 512\)"),
        (lambda: linearize(torch.rand(1, 3, 4, 4), [0.0, 1.0]), TypeError, "got list"),
        (lambda: linearize(torch.rand(1, 3, 4, 4), CURVES, threshold=1.0), ValueError, "threshold"),
        (lambda: linearize(torch.rand(1, 3, 4, 4), CURVES, eps=0.0), ValueError, "eps"),
        (lambda: blend(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5), torch.rand(1, 1, 4, 4)), ValueError, "do not match"),
        (lambda: blend(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)), ValueError, r"\(B, 1, H, W\)"),
        (lambda: blend(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), torch.rand(1, 1, 4, 4), float("inf")), ValueError, "scale"),
    ],
    ids=["3d", "4-channels", "float64", "short-curve", "list-curve", "threshold", "eps", "shape-mismatch", "mask-channels", "inf-scale"],
)
def test_bad_inputs_are_rejected(make, error, match):
    with pytest.raises(error, match=match):
        make()


_CHILD_WITHOUT_TRITON = r"""
import json, sys
sys.modules["triton"] = None  # "import triton" now raises ImportError, as when it is not installed
import torch
from ldr2hdr.inference import kernels
from ldr2hdr.inference.errors import KernelUnavailableError
from ldr2hdr.inference.kernels import triton_kernels
report = {"available": triton_kernels.AVAILABLE, "import_error": triton_kernels.IMPORT_ERROR}
ldr = torch.rand(1, 3, 4, 4)
curves = torch.linspace(0, 1, 1024)[None]
report["auto_ok"] = bool(torch.isfinite(kernels.linearize(ldr, curves, backend="auto").log_linear).all())
try:
    kernels.linearize(ldr, curves, backend="triton")
except KernelUnavailableError as exc:
    report["forced_error"] = str(exc)
print(json.dumps(report))
"""


def test_without_triton_installed_imports_and_reports_at_first_use(tmp_path):
    result = subprocess.run([sys.executable, "-c", _CHILD_WITHOUT_TRITON], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["available"] is False and "triton" in report["import_error"]
    assert report["auto_ok"] is True
    assert "pip install triton" in report["forced_error"]
