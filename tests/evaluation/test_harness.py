"""Evaluation harness: end-to-end on a tiny reference, registry, split, command line."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ldr2hdr.evaluation import harness, lighting, methods, references, report
from ldr2hdr.inference import cli
from ldr2hdr.inference.errors import Ldr2HdrError
from ldr2hdr.training import split


def _write_exr(path: Path, pixels: np.ndarray) -> Path:
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(np.ascontiguousarray(pixels, dtype=np.float32))
    assert buf.write(str(path)), buf.geterror()
    return path


@pytest.fixture(scope="module")
def tiny_light(tmp_path_factory) -> Path:
    """One bpy studio light, area-downsampled to 128x64, in its own folder."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("bpy studio lights not installed")
    root = Path(list(spec.submodule_search_locations)[0])
    hits = sorted(root.glob("*/datafiles/studiolights/world/sunset.exr"))
    if not hits:
        pytest.skip("bpy studio lights not installed")
    import OpenImageIO as oiio

    pixels = np.maximum(oiio.ImageBuf(str(hits[0])).get_pixels(oiio.FLOAT)[..., :3], 0.0)
    folder = tmp_path_factory.mktemp("refs")
    _write_exr(folder / "sunset_small.exr", lighting.area_downsample(pixels, 64, 128))
    return folder


def _run_tiny(folder: Path, out: Path, methods=("srgb-clip", "gamma2.2"), curves=("srgb", "gamma2.2")):
    return harness.evaluate(
        [folder], list(methods), out, max_width=128, clip_fractions=(0.05,), codecs=("png",), curves=list(curves)
    )


def test_end_to_end_writes_json_and_markdown(tiny_light, tmp_path):
    summary = _run_tiny(tiny_light, tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["references"][0]["panorama"] is True
    assert len(data["rows"]) == 2 * 2  # 2 curves x 2 methods
    row = data["rows"][0]
    for key in ("reference", "curve", "curve_family", "clip_fraction", "codec", "method", "status",
                *report.METRIC_COLUMNS):
        assert key in row, key
    assert all(r["status"] == "ok" for r in data["rows"])
    by_method = data["summary"]["by_method"]
    assert set(by_method) == {"srgb-clip", "gamma2.2"}
    assert by_method["srgb-clip"]["pu21_psnr"]["n"] == 2
    # a method that knows the true curve recovers it exactly
    srgb_on_srgb = [r for r in data["rows"] if r["method"] == "srgb-clip" and r["curve"] == "srgb"][0]
    assert srgb_on_srgb["crf_rmse"] == pytest.approx(0.0, abs=1e-12)
    assert srgb_on_srgb["si_log2_rmse_unclipped"] < 0.1
    assert srgb_on_srgb["clipped_energy_bias_stops"] < 0  # clipping loses energy
    assert srgb_on_srgb["irradiance_rel_error"] > 0

    md = (tmp_path / "results.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| method |"))
    for label, _, _ in report.METRIC_COLUMNS.values():
        assert label in header
    assert "| srgb-clip |" in md and "| gamma2.2 |" in md
    assert "Alignment:" in md
    assert summary["config"]["mode"] == "standard"


def test_results_are_deterministic(tiny_light, tmp_path):
    a = _run_tiny(tiny_light, tmp_path / "a", methods=("srgb-clip",), curves=("srgb",))
    b = _run_tiny(tiny_light, tmp_path / "b", methods=("srgb-clip",), curves=("srgb",))
    keys = ("pu21_psnr", "si_log2_rmse", "irradiance_rel_error")
    assert [a["rows"][0][k] for k in keys] == [b["rows"][0][k] for k in keys]


def test_custom_method_plugs_in_and_unavailable_is_reported(tiny_light, tmp_path):
    def perfect_curve(ldr, info):
        assert set(info) == {"panorama", "codec", "bits", "weights_dir"}  # no ground truth leaks to methods
        return np.power(ldr, 2.2), np.linspace(0, 1, 1024) ** 2.2

    def missing():
        raise ImportError("weights not trained yet")

    methods.register_method("test-gamma", perfect_curve, replace=True)
    methods.register_method("test-missing", perfect_curve, check=missing, replace=True)
    try:
        summary = _run_tiny(tiny_light, tmp_path, methods=("test-gamma", "test-missing"), curves=("gamma2.2",))
    finally:
        methods._REGISTRY.pop("test-gamma", None)
        methods._REGISTRY.pop("test-missing", None)
    assert [r["method"] for r in summary["rows"]] == ["test-gamma"]
    assert summary["rows"][0]["crf_rmse"] == pytest.approx(0.0, abs=1e-12)
    assert "test-missing" in summary["unavailable_methods"]
    assert "test-missing" in (tmp_path / "results.md").read_text()


def test_method_errors_are_recorded_not_fatal(tiny_light, tmp_path):
    def broken(ldr, info):
        return ldr[:, :-1], None  # wrong shape

    methods.register_method("test-broken", broken, replace=True)
    try:
        summary = _run_tiny(tiny_light, tmp_path, methods=("test-broken", "srgb-clip"), curves=("srgb",))
    finally:
        methods._REGISTRY.pop("test-broken", None)
    status = {r["method"]: r["status"] for r in summary["rows"]}
    assert status["test-broken"].startswith("error:") and status["srgb-clip"] == "ok"
    assert summary["summary"]["by_method"]["test-broken"]["errors"] == 1


def test_unknown_method_and_missing_refs_raise(tmp_path):
    with pytest.raises(Ldr2HdrError):
        harness.evaluate([tmp_path], ["no-such-method"], tmp_path / "out")
    with pytest.raises(Ldr2HdrError):
        harness.evaluate([tmp_path], ["srgb-clip"], tmp_path / "out")  # empty folder


def test_default_registry_has_the_baselines():
    names = methods.available_methods()
    for name in ("srgb-clip", "gamma2.2", "masia2017", "kovaleski2014", "ldr2hdr-classical", "ldr2hdr-learned"):
        assert name in names


def test_find_references_skips_training_files(tmp_path):
    img = np.ones((8, 16, 3), np.float32)
    train_name = next(n for n in split.TRAIN_SPLIT if n.endswith(".exr"))
    _write_exr(tmp_path / train_name, img)
    _write_exr(tmp_path / "my_own.exr", img)
    (tmp_path / "notes.txt").write_text("not an image")
    assert [p.name for p in references.find_references([tmp_path])] == ["my_own.exr"]
    names = sorted(p.name for p in references.find_references([tmp_path], exclude_training=False))
    assert names == sorted([train_name, "my_own.exr"])


def test_quick_subset_mixes_panoramas_and_flats(tmp_path):
    for i in range(6):
        _write_exr(tmp_path / f"pano{i}.exr", np.ones((8, 16, 3), np.float32))
        _write_exr(tmp_path / f"flat{i}.exr", np.ones((8, 12, 3), np.float32))
    chosen = references._quick_subset(references.find_references([tmp_path]))
    kinds = [p.name.startswith("pano") for p in chosen]
    assert kinds.count(True) == references.QUICK_PANORAMAS and kinds.count(False) == references.QUICK_FLATS
    assert chosen == references._quick_subset(list(reversed(references.find_references([tmp_path]))))


def test_cli_arguments_and_run_eval(tiny_light, tmp_path, capsys):
    parser = harness.add_eval_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--list-methods"])
    assert harness.run_eval(args) == 0
    assert "kovaleski2014" in capsys.readouterr().out
    args = parser.parse_args([str(tiny_light), "--methods", "srgb-clip", "--out", str(tmp_path), "--quick",
                              "--max-width", "64"])
    assert args.quick and args.methods == "srgb-clip"
    assert harness.run_eval(args) == 0
    assert (tmp_path / "results.json").is_file()
    assert "| srgb-clip |" in capsys.readouterr().out


# ----------------------------------------------------------------------------- fixed split


def test_split_lists_are_disjoint_and_studio_lights_are_eval():
    assert not set(split.EVAL_SPLIT) & set(split.TRAIN_SPLIT)
    assert split.is_eval("/x/studiolights/world/forest.exr")
    assert split.is_eval("venice_sunset_1k.hdr")  # same scene as the studio light "sunset"
    assert split.is_train("chinese_garden_1k.hdr")
    total = len(split.EVAL_SPLIT) + len(split.TRAIN_SPLIT)
    assert 0.25 <= len(split.EVAL_SPLIT) / total <= 0.35


def test_split_keeps_one_scene_on_one_side():
    sides = {split.is_eval(n) for n in ("IMG_2601_Blend.exr", "IMG_2601_LCHab.exr")}
    assert len(sides) == 1


def test_split_hash_rule_for_unknown_names_is_stable():
    names = [f"new_file_{i}.exr" for i in range(200)]
    first = [split.is_eval(n) for n in names]
    assert first == [split.is_eval(n) for n in names]
    assert 0.15 < np.mean(first) < 0.45


def test_dorf_split_matches_the_common_recipe():
    train, test = split.dorf_split()
    assert len(test) == 10 and len(train) == 191
    assert not set(train) & set(test)
    order = np.arange(201)
    np.random.RandomState(730).shuffle(order)
    assert sorted(order[-10:]) == list(test)
    from ldr2hdr.inference import crf

    np.testing.assert_array_equal(crf.dorf_split()[1], test)


def test_split_covers_the_shared_data_when_present():
    files = split.hdr_files()
    if not files:
        pytest.skip("../shared/data/hdr not available")
    names = {p.name for p in files}
    assert names <= set(split.EVAL_SPLIT) | set(split.TRAIN_SPLIT)
    assert {p.name for p in split.eval_files(include_studio_lights=False)} == set(split.EVAL_SPLIT) & names


def test_shards_and_method_subsets_merge_into_the_whole(tiny_light, tmp_path):
    import shutil

    second = tmp_path / "refs2"
    shutil.copytree(tiny_light, second)
    (second / "sunset_small.exr").rename(second / "sunset_copy.exr")
    refs = [tiny_light, second]
    kw = dict(max_width=128, clip_fractions=(0.05,), codecs=("png",), curves=["srgb"])
    whole = harness.evaluate(refs, ["srgb-clip", "gamma2.2"], tmp_path / "whole", **kw)
    a = harness.evaluate(refs, ["srgb-clip"], tmp_path / "a", shard=(0, 2), **kw)
    b = harness.evaluate(refs, ["srgb-clip"], tmp_path / "b", shard=(1, 2), **kw)
    c = harness.evaluate(refs, ["gamma2.2"], tmp_path / "c", **kw)
    assert len(a["rows"]) == len(b["rows"]) == 1
    merged = harness.merge_results([tmp_path / p / "results.json" for p in "abc"], tmp_path / "m")
    assert len(merged["rows"]) == len(whole["rows"]) == 4
    for method in ("srgb-clip", "gamma2.2"):
        assert merged["summary"]["by_method"][method]["pu21_psnr"]["mean"] == pytest.approx(
            whole["summary"]["by_method"][method]["pu21_psnr"]["mean"])
    assert (tmp_path / "m" / "results.md").is_file()
    with pytest.raises(Ldr2HdrError):
        harness.evaluate(refs, ["srgb-clip"], tmp_path / "x", shard=(2, 2), **kw)


def test_candidate_weights_folder_is_used_instead_of_the_bundled_weights(tiny_light, tmp_path):
    import shutil

    bundled = Path(harness.__file__).resolve().parents[1] / "weights"
    cand = tmp_path / "candidate"
    cand.mkdir()
    shutil.copyfile(bundled / "manifest.json", cand / "manifest.json")
    shutil.copyfile(bundled / "highlight_net.safetensors", cand / "highlight_net.safetensors")
    kw = dict(max_width=128, clip_fractions=(0.05,), codecs=("png",), curves=["srgb"])
    same = harness.evaluate([tiny_light], ["ldr2hdr-learned"], tmp_path / "same", weights_dir=cand, **kw)
    assert same["config"]["weights_dir"] == str(cand)
    assert [r["status"] for r in same["rows"]] == ["ok"]
    data = bytearray((cand / "highlight_net.safetensors").read_bytes())
    data[-1] ^= 0xFF  # no longer the file its manifest describes: the run must refuse it
    (cand / "highlight_net.safetensors").write_bytes(bytes(data))
    bad = harness.evaluate([tiny_light], ["ldr2hdr-learned"], tmp_path / "bad", weights_dir=cand, **kw)
    assert bad["rows"][0]["status"].startswith("error") and "sha256" in bad["rows"][0]["status"]


def test_missing_candidate_weights_folder_is_one_error_before_any_sample(tiny_light, tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(Ldr2HdrError, match="weights folder not found"):
        harness.evaluate([tiny_light], ["ldr2hdr-learned"], tmp_path / "out", weights_dir=missing,
                          max_width=128, clip_fractions=(0.05,), codecs=("png",), curves=["srgb"])
    assert not (tmp_path / "out" / "results.json").exists()
    rc = cli.main(["eval", str(tiny_light), "--weights-dir", str(missing), "--out", str(tmp_path / "cli")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and str(missing) in err[0] and "weights folder not found" in err[0]
