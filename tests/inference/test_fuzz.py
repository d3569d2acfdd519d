"""Hostile inputs: mutated real files, random pixel values, big batches, concurrent writers.

The mutated-file fuzz runs in a subprocess (tests/inference/fuzz_worker.py) under a memory
limit and a per-case alarm, so a native crash, a hang or a runaway allocation is a failed
test with the seed to reproduce it. Fixed seed and 120 cases by default (well under a minute);
set LDR2HDR_FUZZ_CASES=2000 for the long mode.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ldr2hdr.inference import cli, crf, io, pipeline
from ldr2hdr.inference.errors import Ldr2HdrError, UnsupportedImageError

WORKER = Path(__file__).with_name("fuzz_worker.py")


def test_mutated_files_end_in_a_result_or_a_one_line_error(tmp_path):
    cases = int(os.environ.get("LDR2HDR_FUZZ_CASES", "120"))
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, str(WORKER), "--seed", "20261125", "--cases", str(cases),
                           "--workdir", str(tmp_path / "work"), "--report", str(report), "--memory-gb", "8"],
                          capture_output=True, text=True, timeout=60 + cases * 3)
    assert report.is_file(), f"fuzz worker died (status {proc.returncode}): {proc.stderr[-2000:]}"
    data = json.loads(report.read_text())
    bad = [r for r in data["cases"] if r["status"] not in ("ok", "refused")]
    assert not bad, f"seed {data['seed']}: {bad[:5]}"
    assert proc.returncode == 0
    statuses = {r["status"] for r in data["cases"]}
    assert statuses == {"ok", "refused"}  # the corpus really exercises both paths
    # native decoders must not leak their own lines to the user's terminal
    leaked = [l for l in proc.stderr.splitlines() if "libpng error" in l or "EXR_ERR" in l]
    assert not leaked, leaked[:3]


finite_or_special = st.one_of(
    st.floats(min_value=-10, max_value=1e5, allow_nan=False, width=32),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 65504.0, 2.0 ** -100]),
)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9).map(
    lambda s: (s[0], s[1], 3)), elements=finite_or_special))
def test_exr_values_are_refused_or_sanitized(tmp_path, pixels):
    path = tmp_path / "v.exr"
    io.write_exr(path, pixels, half=False)
    finite = np.isfinite(pixels).all()
    try:
        img = io.read_image(path)
    except UnsupportedImageError as exc:
        assert not finite and "non-finite" in str(exc) and "\n" not in str(exc)
        return
    assert finite
    assert np.isfinite(img.pixels).all() and img.pixels.min() >= 0
    np.testing.assert_array_equal(img.pixels, np.maximum(pixels, 0))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 4)),
                  elements=finite_or_special))
def test_pipeline_refuses_bad_arrays_with_a_clear_error(ldr):
    try:
        result = pipeline.run(ldr, pipeline.Settings(method="classical"))
    except Ldr2HdrError as exc:
        assert "\n" not in str(exc)
        return
    assert ldr.shape[2] == 3 and np.isfinite(ldr).all()
    assert np.isfinite(result.hdr).all() and result.hdr.min() >= 0


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(["inverse_crf", "inverse_crf_rgb", "method", "confidence"]),
                       st.one_of(st.none(), st.text(max_size=5), st.floats(allow_nan=True),
                                 st.lists(st.floats(allow_nan=True, width=32), max_size=1030))))
def test_curve_files_with_garbage_are_refused(data):
    try:
        inv = crf.InverseCRF.from_json_dict(data)
    except (KeyError, ValueError, TypeError):
        return
    g = inv.gray
    assert np.all(np.diff(g) >= 0) and np.isfinite(g).all()


def _tiny_batch(folder: Path, n_good: int, n_bad: int) -> None:
    rng = np.random.default_rng(7)
    folder.mkdir()
    good = []
    for i in range(n_good):
        p = folder / f"g{i:03d}.png"
        io.write_png(p, rng.random((12, 16, 3)).astype(np.float32))
        good.append(p)
    data = good[0].read_bytes()
    for i in range(n_bad):
        (folder / f"b{i:03d}.png").write_bytes(data[: 20 + 3 * i])


def test_batch_of_200_with_20_bad_files_then_resume_does_no_work(tmp_path):
    batch, out, report = tmp_path / "batch", tmp_path / "out", tmp_path / "report.json"
    _tiny_batch(batch, 180, 20)
    args = ["linearize", str(batch), "-o", str(out), "-q", "--method", "classical", "--report", str(report)]
    assert cli.main(args) == 1
    first = json.loads(report.read_text())
    assert (first["ok"], first["failed"]) == (180, 20)
    assert sorted(r["input"] for r in first["inputs"] if r["status"] == "error") == sorted(
        str(p) for p in batch.glob("b*.png"))
    assert cli.main(args + ["--resume"]) == 1
    second = json.loads(report.read_text())
    assert (second["ok"], second["skipped"], second["failed"]) == (0, 180, 20)


def test_two_batches_on_one_output_folder_do_not_corrupt_each_other(tmp_path):
    batch, out = tmp_path / "batch", tmp_path / "out"
    _tiny_batch(batch, 30, 0)
    cmd = [sys.executable, "-m", "ldr2hdr.inference.cli", "linearize", str(batch), "-o", str(out), "-q",
           "--method", "classical"]
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    # every output exists once, decodes, and came from its own input; no temporary files remain
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"g{i:03d}.exr" for i in range(30))
    for i in range(30):
        meta = io.read_exr_metadata(out / f"g{i:03d}.exr")
        assert meta["source_file"].endswith(f"g{i:03d}.png")
        io.read_image(out / f"g{i:03d}.exr")
    # each file was written by exactly one process; the other was told, not silently overwritten
    refused = sum(e.count("exists (use --overwrite") for e in errs)
    assert refused == 30
    assert all("Traceback" not in e for e in errs)
