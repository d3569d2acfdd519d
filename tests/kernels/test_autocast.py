"""Half-precision autocast for the network: a small random conv net stays within 0.05 stops of fp32."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
from torch import nn

from ldr2hdr.inference import crf
from ldr2hdr.inference.errors import KernelUnavailableError
from ldr2hdr.inference.kernels import autocast_context, linearize

MAX_STOPS_RMSE = 0.05  # the bound on the log2 RMSE change from half precision


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 3, 3, padding=1),
    ).eval()


def run_net(net: nn.Module, x: torch.Tensor, context) -> tuple[torch.Tensor, set]:
    """The net's log-radiance output as float32, and the dtypes its convolutions produced."""
    seen = set()
    hooks = [m.register_forward_hook(lambda m, i, o: seen.add(o.dtype)) for m in net if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad(), context:
            # The residual on the log input gives outputs of realistic size (-14..0 nats).
            y = x + net(x)
    finally:
        for h in hooks:
            h.remove()
    return y.float(), seen


@pytest.fixture
def log_input() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    ldr = torch.rand(1, 3, 32, 48, generator=g)
    return linearize(ldr, crf.srgb_inverse(), backend="reference").log_linear


def test_bfloat16_autocast_stays_within_005_stops_of_fp32(log_input):
    net = small_net()
    y32, dtypes32 = run_net(net, log_input, autocast_context("cpu", torch.float32))
    y16, dtypes16 = run_net(net, log_input, autocast_context("cpu", torch.bfloat16))
    assert dtypes32 == {torch.float32} and dtypes16 == {torch.bfloat16}  # autocast really ran
    stops_rmse = float(torch.sqrt(torch.mean(((y16 - y32) / math.log(2.0)) ** 2)))
    assert 0.0 < stops_rmse <= MAX_STOPS_RMSE, stops_rmse


def test_full_precision_is_a_no_op_context():
    assert isinstance(autocast_context("cpu", None), contextlib.nullcontext)
    assert isinstance(autocast_context(torch.device("cpu"), torch.float32), contextlib.nullcontext)


def test_bad_autocast_requests():
    with pytest.raises(ValueError, match="float64"):
        autocast_context("cpu", torch.float64)


def test_bfloat16_on_a_gpu_without_it_raises(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(KernelUnavailableError, match="bfloat16"):
        autocast_context("cuda", torch.bfloat16)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_half_autocast_on_gpu_stays_within_005_stops(log_input, dtype):
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    net = small_net().cuda()
    x = log_input.cuda()
    y32, _ = run_net(net, x, autocast_context("cuda", None))
    y16, dtypes = run_net(net, x, autocast_context("cuda", dtype))
    assert dtypes == {dtype}
    assert float(torch.sqrt(torch.mean(((y16 - y32) / math.log(2.0)) ** 2))) <= MAX_STOPS_RMSE
