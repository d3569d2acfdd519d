"""The CRF training loss: the mid-tone log term sees what the linear RMSE hides."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
train_crf = pytest.importorskip("train_crf")

GRID = np.linspace(0.0, 1.0, 1024)


def _curves(inv: np.ndarray) -> "torch.Tensor":
    """One inverse curve ``(1024,)`` as a ``(1, 4, 1024)`` batch (gray + three channels)."""
    return torch.from_numpy(np.repeat(inv[None, None], 4, axis=1)).float()


def test_log_weight_zero_is_the_plain_curve_loss():
    true, pred = _curves(GRID ** 2.2), _curves(GRID ** 2.0)
    loss0, rmse0 = train_crf.curve_loss(pred, true)
    loss1, _ = train_crf.curve_loss(pred, true, 0.0)
    err = (pred - true)[0, 0].numpy()
    per = np.abs(err).mean() + np.sqrt((err ** 2).mean())
    assert float(loss0) == pytest.approx(1.5 * per, rel=1e-5) == pytest.approx(float(loss1), rel=1e-6)
    assert float(rmse0[0]) == pytest.approx(np.sqrt((err ** 2).mean()), rel=1e-4)


def test_log_term_weighs_relative_midtone_errors():
    true = GRID ** 2.2
    # the same mid-tone error of 0.5 stops: tiny in linear values, large in the log term
    dark = true * np.where((GRID > 0.1) & (GRID < 0.3), 2 ** 0.5, 1.0)
    bright = true + np.where((GRID > 0.7) & (GRID < 0.9), 0.04, 0.0)
    t = _curves(true)
    lin_dark = float(train_crf.curve_loss(_curves(dark), t)[0])
    lin_bright = float(train_crf.curve_loss(_curves(bright), t)[0])
    log_dark = float(train_crf.curve_loss(_curves(dark), t, 1.0)[0]) - lin_dark
    log_bright = float(train_crf.curve_loss(_curves(bright), t, 1.0)[0]) - lin_bright
    assert lin_dark < lin_bright          # the linear loss prefers the dark-tone error...
    assert log_dark > 3 * log_bright      # ...which is several times worse in stops
    assert float(train_crf.curve_loss(t, t, 1.0)[0]) < 1e-4


def test_log_term_ignores_the_noisy_bottom_codes():
    true = GRID ** 2.2
    off = true.copy()
    off[: train_crf.LOG_RANGE[0]] *= 8.0    # 3 stops off, but only below the compared range
    t = _curves(true)
    extra = float(train_crf.curve_loss(_curves(off), t, 1.0)[0]) - float(train_crf.curve_loss(_curves(off), t)[0])
    assert extra < 1e-6


def test_install_names_the_weights_a_fine_tune_started_from(tmp_path):
    eval_highlights = pytest.importorskip("eval_highlights")
    start = tmp_path / "start.safetensors"
    start.write_bytes(b"weights")
    cmd = f"python training/train_highlights.py --init {start} --minutes 5"
    assert eval_highlights._init_weights(cmd) == start
    assert eval_highlights._init_weights("python training/train_highlights.py --minutes 90") is None
    assert eval_highlights._init_weights(f"python training/train_highlights.py --init {tmp_path / 'gone'}") is None
    assert eval_highlights._init_weights("python training/train_highlights.py --init") is None


def test_install_records_how_the_starting_weights_and_renders_were_made(tmp_path):
    eval_highlights = pytest.importorskip("eval_highlights")
    from ldr2hdr.inference.weights import record_weights_file, sha256_of

    start = tmp_path / eval_highlights.WEIGHTS_FILE.name
    start.write_bytes(b"weights v2")
    record_weights_file(start, command="train --ft 2", training={"init_command": "train --scratch",
                                                                  "init_sha256": "ab"})
    manifest = tmp_path / "manifest.json"
    got = eval_highlights._init_lineage(sha256_of(start), manifest)
    assert got == {"init_command": "train --ft 2", "init_lineage": ["train --scratch", "train --ft 2"]}
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"not the installed weights")
    assert eval_highlights._init_lineage(sha256_of(other), manifest) == {}

    renders = tmp_path / "renders"
    renders.mkdir()
    for seed in (1003, 1001, 1002):
        (renders / f"render_{seed:05d}.json").write_text(json.dumps({"seed": seed, "size": [128, 256], "samples": 16}))
    (renders / "render_01004.json").write_text("{not json")
    cmd = eval_highlights._renders_command(renders, 3)
    assert cmd == f"python training/render_scenes.py --count 3 --seed 1001 --size 256 --threads 2 --out {renders}"
    assert eval_highlights._renders_command(tmp_path / "empty", 3) is None


class _ConstantNet(torch.nn.Module):
    """Predicts one log radiance everywhere (stands in for the highlight network)."""

    def __init__(self, log_value: float):
        super().__init__()
        self.log_value = log_value

    def context(self, linear, mask, wrap):
        return None

    def forward(self, linear, mask, context, wrap=False):
        return torch.full_like(linear, self.log_value)


def _one_region_batch(truth: float) -> dict:
    lin = torch.full((1, 3, 16, 16), 0.2)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1.0
    lin = lin * (1 - mask) + mask
    labels = (mask[0, 0] > 0).int()
    return {"linear": lin, "mask": mask, "target": lin * (1 - mask) + truth * mask,
            "weight": torch.ones(1, 1, 16, 16), "labels": labels[None]}


def test_under_weight_makes_too_little_energy_cost_more():
    train_highlights = pytest.importorskip("train_highlights")
    batch = _one_region_batch(4.0)
    under, over = _ConstantNet(float(np.log(2.0))), _ConstantNet(float(np.log(8.0)))
    e = {(name, w): float(train_highlights.compute_losses(net, batch, False, under_weight=w)["energy"])
         for name, net in (("under", under), ("over", over)) for w in (1.0, 2.0)}
    # one stop off either way: ln 2 for the region and for the total, averaged
    assert e["under", 1.0] == pytest.approx(np.log(2.0), rel=1e-4) == pytest.approx(e["over", 1.0], rel=1e-4)
    assert e["under", 2.0] == pytest.approx(2 * np.log(2.0), rel=1e-4)
    assert e["over", 2.0] == pytest.approx(e["over", 1.0], rel=1e-6)
