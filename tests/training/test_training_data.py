"""Synthetic training content: dead-leaves scenes (CRF) and added light sources (highlights).

These generators need no ../shared data, so they are tested on every machine.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))

crf_data = pytest.importorskip("crf_data")
highlight_data = pytest.importorskip("highlight_data")


def test_dead_leaves_is_a_linear_hdr_scene_with_many_stops():
    rng = np.random.default_rng(0)
    for size in (128, 256):
        img = crf_data.dead_leaves(rng, size)
        assert img.shape == (size, size, 3)
        assert np.isfinite(img).all() and (img > 0).all()
        peak = img.max(axis=2)
        stops = np.log2(np.quantile(peak, 0.99) / np.quantile(peak, 0.01))
        assert stops > 3.0, stops  # a flat image would teach nothing about the curve
        # occluding shapes: many distinct edges, not a smooth gradient
        gy = np.abs(np.diff(np.log(peak), axis=0))
        assert (gy > 0.2).mean() > 0.01


def test_dead_leaves_is_seeded():
    a = crf_data.dead_leaves(np.random.default_rng(7), 64)
    b = crf_data.dead_leaves(np.random.default_rng(7), 64)
    np.testing.assert_array_equal(a, b)


def test_dead_leaves_edges_are_linear_mixtures():
    # blur happens in the linear domain: across an edge, a pixel's RGB lies on the segment
    # between its two neighbours (to float precision), which the curve then bends
    rng = np.random.default_rng(3)
    img = crf_data.dead_leaves(rng, 128)
    left, mid, right = img[:, :-2], img[:, 1:-1], img[:, 2:]
    # rows where the three pixels differ a lot: mid must not exceed the brighter neighbour
    hi = np.maximum(left, right) * (1 + 1e-6)
    lo = np.minimum(left, right) * (1 - 1e-6)
    strong = np.abs(np.log(left / right)).max(axis=-1) > 1.0
    inside = ((mid <= hi * 1.5) & (mid >= lo / 1.5)).all(axis=-1)
    assert inside[strong].mean() > 0.9


@pytest.mark.parametrize("panorama", [False, True])
def test_light_sources_add_intense_compact_energy(panorama):
    rng = np.random.default_rng(1)
    h, w = (64, 128) if panorama else (96, 96)
    view = np.full((h, w, 3), 0.2, np.float32) * np.linspace(0.5, 1.5, w, dtype=np.float32)[None, :, None]
    before = view.copy()
    out = highlight_data.add_light_sources(view, rng, panorama=panorama)
    np.testing.assert_array_equal(view, before)  # the input is not modified
    assert out.shape == view.shape and out.dtype == np.float32
    assert (out >= view).all()  # sources only add light
    q = np.quantile(view.max(axis=-1), 0.98)
    assert out.max() > 2.0 * q  # at least 1.5 stops (rectangles) above the scene's bright end
    added = np.sort((out - view).sum(axis=-1).ravel())
    # compact: the brightest 5 % of the pixels carry most of the added energy (halo = the rest)
    assert added[-added.size // 20:].sum() > 0.7 * added.sum()


def test_light_sources_leave_a_black_view_alone():
    view = np.zeros((32, 32, 3), np.float32)
    out = highlight_data.add_light_sources(view, np.random.default_rng(0), panorama=False)
    np.testing.assert_array_equal(out, view)


def test_render_fraction_decides_where_panoramas_come_from():
    ref = highlight_data.Reference
    real = ref("real.hdr", np.full((32, 64, 3), 0.5, np.float32), True)
    flat = ref("flat.exr", np.full((40, 40, 3), 0.5, np.float32), False)
    rendered = ref("render_01000.exr", np.full((32, 64, 3), 2.0, np.float32), True, rendered=True)
    refs = [real, flat, rendered]
    for fraction, expected in ((0.0, {"real.hdr"}), (1.0, {"render_01000.exr"})):
        pool = highlight_data.SamplePool.__new__(highlight_data.SamplePool)  # no samples: test the draw only
        pool.rng = np.random.default_rng(0)
        pool.refs = [r for r in refs if not r.rendered]
        pool.panos = [r for r in pool.refs if r.panorama]
        pool.renders = [r for r in refs if r.rendered]
        pool.render_fraction = fraction
        assert {pool._pano().name for _ in range(50)} == expected
    pool.render_fraction = 0.3
    names = [pool._pano().name for _ in range(2000)]
    assert 0.25 < names.count("render_01000.exr") / len(names) < 0.35
    assert flat not in pool.panos and rendered not in pool.refs  # renders never count as real references


def test_load_renders_skips_what_is_not_a_rendered_panorama(tmp_path):
    from ldr2hdr.inference import io

    good = np.ones((32, 64, 3), np.float32)
    io.write_exr(tmp_path / "render_00001.exr", good)
    io.write_exr(tmp_path / "render_00002.exr", np.ones((32, 32, 3), np.float32))  # not 2:1
    (tmp_path / "render_00003.exr").write_bytes(b"not an exr")
    refs = highlight_data.load_renders(tmp_path)
    assert [r.name for r in refs] == ["render_00001.exr"]
    assert refs[0].rendered and refs[0].panorama


@pytest.mark.parametrize("size", [(32, 64), (64, 128)])
def test_panorama_samples_have_the_requested_size(size):
    # train_highlights.py --pano-sizes makes one pool per width; each must hand out its size
    rng = np.random.default_rng(0)
    sky = np.linspace(2.0, 0.1, 128, dtype=np.float32)[:, None, None] * np.ones((128, 256, 3), np.float32)
    refs = [highlight_data.Reference("pano.exr", sky, True), highlight_data.Reference("flat.exr", sky[:, :128], False)]
    pool = highlight_data.SamplePool(refs, rng, kind="pano", size=3, stage=1, pano_size=size)
    batch = pool.batch(2)
    assert batch["linear"].shape == (2, 3, *size) and batch["mask"].shape == (2, 1, *size)
    assert batch["weight"][0, 0, 0, 0] < batch["weight"][0, 0, size[0] // 2, 0]  # solid angle: poles weigh less


def test_train_highlights_rejects_panorama_widths_the_network_cannot_take():
    import subprocess

    script = Path(__file__).resolve().parents[2] / "training" / "train_highlights.py"
    for bad in ("500", "abc", ""):
        res = subprocess.run([sys.executable, str(script), "--pano-sizes", bad, "--max-steps", "1"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and "--pano-sizes" in res.stderr, (bad, res.stderr)


def test_modern_camera_curve_families_are_valid_inverse_curves():
    import crf_curves
    from ldr2hdr.inference import crf

    rng = np.random.default_rng(3)
    srgb = crf_curves.random_parametric_curve(rng, "srgb")
    np.testing.assert_allclose(srgb, crf.srgb_inverse().curves[0], atol=2e-3)
    for _ in range(20):
        c = crf_curves.random_parametric_curve(rng, "camera")
        assert c[0] == 0.0 and c[-1] == 1.0
        assert np.all(np.diff(c) >= 0)
        # a picture style on top of sRGB: near sRGB, never identical to it
        assert 1e-3 < np.sqrt(np.mean((c - srgb) ** 2)) < 0.3
    assert len(crf_curves.FAMILY_P) == len(crf_curves.FAMILIES)


def test_energy_monotone_constraints_name_the_growth_features():
    train_energy = pytest.importorskip("train_energy")
    from ldr2hdr.inference.highlights import sources

    cst = train_energy.monotone_constraints()
    assert len(cst) == len(sources.FEATURE_NAMES)
    assert {sources.FEATURE_NAMES[i] for i, c in enumerate(cst) if c} == {
        f"log2_growth{t}" for t in sources.GROWTH_LEVELS}
    assert not any(train_energy.monotone_constraints(()))
    with pytest.raises(ValueError):
        train_energy.monotone_constraints(("no_such_feature",))


def test_energy_photo_filters_renumber_sources_and_read_the_render_kind(tmp_path):
    train_energy = pytest.importorskip("train_energy")

    photos = [{"name": f"render_{i:05d}.exr"} for i in range(3)]
    rows = [{"img": 0, "E": 1.0, "fill": 1.0, "feats": np.zeros(2)},
            {"img": 1, "E": np.inf, "fill": 1.0, "feats": np.zeros(2)},  # a render with an infinite pixel
            {"img": 2, "E": 2.0, "fill": 1.0, "feats": np.zeros(2)},
            {"img": 2, "E": 3.0, "fill": 1.0, "feats": np.zeros(2)}]
    data = {"rows": rows, "images": photos}
    finite = train_energy.finite_photos(data)
    assert [im["name"] for im in finite["images"]] == ["render_00000.exr", "render_00002.exr"]
    assert [(r["img"], r["E"]) for r in finite["rows"]] == [(0, 1.0), (1, 2.0), (1, 3.0)]
    for i, kind in enumerate(("indoor", "indoor", "outdoor")):
        (tmp_path / f"render_{i:05d}.json").write_text(json.dumps({"kind": kind}))
    indoor = train_energy.keep_photos(finite, [train_energy.render_kind(tmp_path, im) == "indoor"
                                               for im in finite["images"]])
    assert [im["name"] for im in indoor["images"]] == ["render_00000.exr"]
    assert [(r["img"], r["E"]) for r in indoor["rows"]] == [(0, 1.0)]
    assert train_energy.keep_photos(data, [True] * 3) is data


def test_energy_learning_curve_falls_with_more_training_scenes(monkeypatch):
    train_energy = pytest.importorskip("train_energy")
    pytest.importorskip("sklearn")
    monkeypatch.setitem(train_energy.PARAMS, "max_iter", 40)  # a small problem: fewer boosting rounds do
    from ldr2hdr.inference.highlights import sources

    rng = np.random.default_rng(0)
    nf = len(sources.FEATURE_NAMES)
    rows, photos = [], []
    for scene in range(40):
        for _ in range(4):  # one source per photo; its boost is a smooth function of the first feature
            x = np.zeros(nf)
            x[0] = rng.uniform(-2, 2)
            x[1] = rng.normal()
            b = 3 * np.tanh(x[0]) + 0.1 * rng.normal()
            rows.append({"img": len(photos), "E": 2.0 ** b, "fill": 1.0, "feats": x, "name": f"scene{scene}",
                         "omega": 0.01})
            photos.append({"name": f"scene{scene}", "pano": True, "fill_total": 1.0, "e_clip_true": 2.0 ** b,
                           "e_open": 1.0, "irr_open": np.ones((4, 3)), "fill_irr": np.full((1, 4, 3), 0.5),
                           "irr_true": np.ones((4, 3)) + 0.5 * 2.0 ** b})
    train = train_energy.arrays({"rows": rows, "images": photos})
    train["weight"] = np.ones(len(rows))
    table = train_energy.learning_curve(train, np.arange(len(rows)), [2, 30], repeats=1, seed=0, shift=0.0,
                                        min_samples_leaf=4)
    assert set(table) == {2, 30} and all(t["fits"] == 5 for t in table.values())
    assert table[30]["energy_abs"] < 0.7 * table[2]["energy_abs"], table
    assert table[30]["irradiance"] < table[2]["irradiance"], table
