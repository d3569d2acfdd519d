"""training/render_scenes.py: rendered panoramas are linear HDR with light sources, and a
rerun continues instead of redoing (a subprocess, so Blender's factory reset stays out of
the other tests)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="needs the bpy module")


def _render(out: Path, seed: int, count: int = 1) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "training" / "render_scenes.py"), "--count", str(count), "--seed", str(seed),
           "--size", "64", "--samples", "2", "--threads", "1", "--out", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_renders_are_linear_hdr_panoramas_and_resume(tmp_path):
    from ldr2hdr.inference.io import read_image

    # seeds 1000 (outdoor, sun) and 1001 (indoor, lamps) with the default 60 % outdoor share
    proc = _render(tmp_path, 1000, count=2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = sorted(tmp_path.glob("render_*.exr"))
    assert [f.name for f in files] == ["render_01000.exr", "render_01001.exr"]
    kinds = set()
    for f in files:
        px = read_image(f).pixels[..., :3]
        assert px.shape == (32, 64, 3)
        assert np.isfinite(px).all() and (px >= 0).all()
        y = px @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        info = json.loads(f.with_suffix(".json").read_text())
        kinds.add(info["kind"])
        if info["kind"] == "indoor":
            # lamps many times brighter than the room they light: the point of these renders
            assert y.max() > 8 * np.median(y[y > 0]), f  # (tiny lamps are sub-pixel at 64 px)
        else:
            # (at 64 px a pixel is 11x the sun's disc and 2 samples miss it: test the sky instead)
            sky = px[:4].reshape(-1, 3).mean(axis=0)
            assert sky[2] > sky[0] > 0, (f, sky)  # the physical sky is there, and blue
            assert y.max() > 4 * y.min() > 0, f
    assert kinds == {"outdoor", "indoor"}
    assert not list(tmp_path.glob(".*tmp*"))  # no half-written file left behind
    before = {f: f.stat().st_mtime_ns for f in files}
    again = _render(tmp_path, 1000, count=2)
    assert again.returncode == 0
    assert {f: f.stat().st_mtime_ns for f in files} == before  # existing renders are kept, not redone
