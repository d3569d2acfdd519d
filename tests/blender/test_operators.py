"""The step operators, run headless on an LDR made from a real HDR panorama.

Each operator must add exactly one group node and one packed float image, wire the node
in place of the Image node, update both on a re-run, and give the same pixels as
``pipeline.run`` and the command line.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from ldr2hdr.inference import cli, io, pipeline  # noqa: E402
from ldr2hdr.nodes import compositor, groups  # noqa: E402
from ldr2hdr.operators import images  # noqa: E402

OPERATORS = {
    "estimate-crf": "estimate_crf",
    "linearize": "linearize",
    "restore": "restore_highlights",
    "reconstruct": "reconstruct",
}
HDR_STEPS = ("restore", "reconstruct")


def _run(step, **kwargs):
    return getattr(bpy.ops.ldr2hdr, OPERATORS[step])(**kwargs)


def _counts():
    tree = compositor.scene_tree(bpy.context.scene)
    nodes = 0 if tree is None else len(tree.nodes)
    # Render Result appears after the first render; it is Blender's, not ours.
    names = sorted(i.name for i in bpy.data.images if i.type != "RENDER_RESULT")
    return nodes, names, len(bpy.data.node_groups)


def _compositor_with(image):
    tree = compositor.scene_tree(bpy.context.scene, create=True)
    node = tree.nodes.new("CompositorNodeImage")
    node.image = image
    tree.links.new(node.outputs["Image"], compositor.output_socket(tree))
    tree.nodes.active = node
    return tree, node


def _pixels(image):
    return images.image_pixels(image)


def _alpha(image):
    buffer = np.empty(image.size[0] * image.size[1] * 4, dtype=np.float32)
    image.pixels.foreach_get(buffer)
    return buffer.reshape(-1, 4)[:, 3]


def _ldr_image(ldr_scene):
    return bpy.data.images.load(str(ldr_scene.path))


def _clipped(ldr):
    return ldr.max(axis=-1) >= 1.0


# --------------------------------------------------------------------------- node runs


@pytest.mark.parametrize("step", list(OPERATORS))
def test_step_adds_one_node_and_one_float_image(addon, ldr_scene, step):
    source = _ldr_image(ldr_scene)
    tree, image_node = _compositor_with(source)
    nodes_before, images_before, groups_before = _counts()

    # The photo was made with the sRGB curve; forcing it makes the expected values exact
    # (how well the learned estimate recovers a curve is the evaluation harness's job).
    assert (_run(step) if step == "estimate-crf" else _run(step, crf="srgb")) == {"FINISHED"}

    nodes_after, images_after, _ = _counts()
    assert nodes_after == nodes_before + 1
    new_images = sorted(set(images_after) - set(images_before))
    assert len(new_images) == 1 and len(images_after) == len(images_before) + 1
    node = tree.nodes.active
    assert node.bl_idname == groups.NODE_TYPES[step]
    result = bpy.data.images[new_images[0]]
    assert groups.result_image(node) == result
    assert node.source_image == source
    assert result.is_float and result.packed_file is not None
    assert result[images.TAG_STEP] == step
    assert np.all(_alpha(result) == 1.0)

    # Wired in place of the Image node: Image -> step node -> compositor output.
    assert node.inputs[0].links[0].from_node == image_node
    if step == "estimate-crf":
        assert result.colorspace_settings.name == "Non-Color"
        assert result.size[:] == (1024, 1)
        curve = _pixels(result)[0]
        assert np.all(np.diff(curve, axis=0) >= 0) and curve[0].max() < 1e-3 and np.allclose(curve[-1], 1.0)
    else:
        assert result.colorspace_settings.name == "Linear Rec.709"
        assert compositor.output_socket(tree).links[0].from_node == node
        pixels = _pixels(result)
        assert pixels.shape == ldr_scene.ldr.shape
        clipped = _clipped(ldr_scene.ldr)
        if step in HDR_STEPS:
            # Restored radiance exceeds the clip level where the photo was clipped...
            assert pixels[clipped].max(axis=-1).mean() > 1.5
            assert (pixels[clipped].max(axis=-1) > 1.0).mean() > 0.9
        else:
            assert pixels.max() <= 1.0 + 1e-6
        # ...and dark, unclipped pixels are the sRGB-decoded values in every step.
        dark = ldr_scene.ldr.max(axis=-1) < 0.5
        assert np.allclose(pixels[dark], ldr_scene.hdr[dark], rtol=0.03, atol=2e-3)

    # A re-run (from the Image node or from the step node) updates, never adds.
    snapshot = _counts()
    tree.nodes.active = image_node
    assert _run(step) == {"FINISHED"}
    tree.nodes.active = node
    assert _run(step) == {"FINISHED"}
    assert _counts() == snapshot
    assert len([n for n in tree.nodes if groups.is_step_node(n)]) == 1
    assert groups.result_image(node).name == new_images[0]
    assert len(bpy.data.node_groups) == groups_before + 1


def test_rerun_uses_node_parameters_and_keeps_image_users(addon, ldr_scene):
    tree, _ = _compositor_with(_ldr_image(ldr_scene))
    assert bpy.ops.ldr2hdr.reconstruct() == {"FINISHED"}
    node = tree.nodes.active
    first = _pixels(groups.result_image(node))
    name = groups.result_image(node).name
    assert bpy.ops.ldr2hdr.set_world_lighting(image=name) == {"FINISHED"}

    node.exposure = 1.0
    assert bpy.ops.ldr2hdr.reconstruct(node=node.name) == {"FINISHED"}
    second = groups.result_image(node)
    assert second.name == name
    np.testing.assert_allclose(_pixels(second), 2.0 * first, rtol=1e-6)
    # The world still shows the refreshed image (users moved to the new buffer).
    env = bpy.context.scene.world.node_tree.nodes["ldr2hdr Environment"]
    assert env.image == second

    # An explicit operator property wins over the node and is stored on it.
    assert bpy.ops.ldr2hdr.reconstruct(node=node.name, exposure=-1.0) == {"FINISHED"}
    assert node.exposure == -1.0
    np.testing.assert_allclose(_pixels(groups.result_image(node)), 0.5 * first, rtol=1e-6)


def test_composite_render_to_exr_carries_restored_values(addon, ldr_scene, tmp_path):
    tree, _ = _compositor_with(_ldr_image(ldr_scene))
    assert bpy.ops.ldr2hdr.restore_highlights() == {"FINISHED"}
    expected = _pixels(groups.result_image(tree.nodes.active))

    scene = bpy.context.scene
    h, w = ldr_scene.ldr.shape[:2]
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = w, h, 100
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    bpy.ops.render.render()
    out = tmp_path / "composite.exr"
    bpy.data.images["Render Result"].save_render(str(out), scene=scene)

    rendered = io.read_image(out).pixels
    assert rendered.max() > 1.5
    assert rendered[_clipped(ldr_scene.ldr)].max(axis=-1).mean() > 1.5
    np.testing.assert_allclose(rendered, expected, rtol=1e-6, atol=1e-7)


def test_result_survives_save_and_reload(addon, ldr_scene, tmp_path):
    tree, _ = _compositor_with(_ldr_image(ldr_scene))
    assert bpy.ops.ldr2hdr.reconstruct() == {"FINISHED"}
    name = groups.result_image(tree.nodes.active).name
    expected = _pixels(bpy.data.images[name])
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    tree = compositor.scene_tree(bpy.context.scene)
    node = next(n for n in tree.nodes if groups.is_step_node(n))
    assert groups.result_image(node).name == name
    np.testing.assert_array_equal(_pixels(bpy.data.images[name]), expected)


# --------------------------------------------------------------------------- same pixels as the CLI


def test_node_run_matches_command_line(addon, ldr_scene, tmp_path):
    tree, _ = _compositor_with(_ldr_image(ldr_scene))
    assert bpy.ops.ldr2hdr.reconstruct(exposure=0.5, crf="gamma2.2") == {"FINISHED"}
    ours = _pixels(groups.result_image(tree.nodes.active))

    out = tmp_path / "cli"
    code = cli.main(["reconstruct", str(ldr_scene.path), "-o", str(out), "--float", "-q",
                     "--exposure", "0.5", "--crf", "gamma2.2"])
    assert code == 0
    theirs = io.read_image(out / f"{ldr_scene.path.stem}.exr").pixels
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=0)


def test_image_and_filepath_runs_match_pipeline(addon, ldr_scene):
    expected = pipeline.run(ldr_scene.ldr, pipeline.Settings(), steps="linearize").linear

    # A generated (unsaved) image: its pixels cross to the worker as an array.
    h, w = ldr_scene.ldr.shape[:2]
    generated = bpy.data.images.new("painted", w, h, alpha=True)
    rgba = np.ones((h, w, 4), dtype=np.float32)
    rgba[..., :3] = ldr_scene.ldr[::-1]
    generated.pixels.foreach_set(rgba.ravel())
    assert not generated.is_float
    assert bpy.ops.ldr2hdr.linearize(image="painted") == {"FINISHED"}
    from_image = _pixels(bpy.data.images["painted_linear"])
    np.testing.assert_allclose(from_image, expected, rtol=1e-5, atol=1e-6)

    # A file is decoded by the worker exactly as the command line decodes it.
    assert bpy.ops.ldr2hdr.linearize(filepath=str(ldr_scene.path)) == {"FINISHED"}
    from_file = _pixels(bpy.data.images[f"{ldr_scene.path.stem}_linear"])
    decoded = io.read_image(ldr_scene.path).pixels
    np.testing.assert_array_equal(from_file, pipeline.run(decoded, pipeline.Settings(), steps="linearize").linear)

    # Script runs make images only, no nodes, kept by a fake user; a re-run replaces the image.
    assert compositor.scene_tree(bpy.context.scene) is None
    assert bpy.data.images["painted_linear"].use_fake_user
    count = len(bpy.data.images)
    assert bpy.ops.ldr2hdr.linearize(filepath=str(ldr_scene.path)) == {"FINISHED"}
    assert len(bpy.data.images) == count


def test_worker_process_gives_the_same_pixels(addon, ldr_scene):
    # The UI path with a Worker Python set: a separate process runs the same code.
    assert bpy.ops.ldr2hdr.linearize(image=_ldr_image(ldr_scene).name) == {"FINISHED"}
    in_process = _pixels(bpy.data.images[f"{ldr_scene.path.stem}_linear"])
    addon.python_path = sys.executable
    assert bpy.ops.ldr2hdr.linearize(image=f"{ldr_scene.path.name}") == {"FINISHED"}
    np.testing.assert_array_equal(_pixels(bpy.data.images[f"{ldr_scene.path.stem}_linear"]), in_process)


def test_weights_folder_preference_reaches_the_models(addon, ldr_scene, tmp_path):
    import shutil

    from ldr2hdr.inference.crf import network as crf_net

    wdir = tmp_path / "weights"
    wdir.mkdir()
    shutil.copy(crf_net.WEIGHTS_FILE.parent / "manifest.json", wdir / "manifest.json")
    (wdir / "crf_net.safetensors").write_bytes(crf_net.WEIGHTS_FILE.read_bytes() + b"\0")  # not the listed file
    addon.weights_dir = str(wdir)
    try:
        before = _counts()
        with pytest.raises(RuntimeError, match="sha256"):
            bpy.ops.ldr2hdr.linearize(filepath=str(ldr_scene.path))
        assert _counts() == before
        shutil.copy(crf_net.WEIGHTS_FILE, wdir / "crf_net.safetensors")  # the listed file: accepted
        assert bpy.ops.ldr2hdr.linearize(filepath=str(ldr_scene.path)) == {"FINISHED"}
    finally:
        addon.weights_dir = ""


def test_node_methods_match_pipeline():
    assert tuple(item[0] for item in groups.METHOD_ITEMS) == pipeline.METHODS
    assert groups.DEFAULT_METHOD == pipeline.Settings().method
    assert set(OPERATORS) == set(pipeline.STEPS) == set(groups.STEPS)


# --------------------------------------------------------------------------- bad cases


def _assert_refused(match, **kwargs):
    before = _counts()
    with pytest.raises(RuntimeError, match=match):
        bpy.ops.ldr2hdr.reconstruct(**kwargs)
    assert _counts() == before


def test_no_active_image_node(addon, ldr_scene):
    _assert_refused("no compositor node tree")
    tree, node = _compositor_with(_ldr_image(ldr_scene))
    tree.nodes.active = None
    _assert_refused("no active Image node.*image=")
    blur = tree.nodes.new("CompositorNodeBlur")
    tree.nodes.active = blur
    _assert_refused("is not an Image node")
    tree.nodes.active = node
    node.image = None
    _assert_refused("has no image")


def test_non_image_inputs(addon, ldr_scene, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    _assert_refused("notes.png: not a readable image", filepath=str(text))
    _assert_refused("no such file", filepath=str(tmp_path / "missing.jpg"))
    _assert_refused("no image named 'nope'", image="nope")

    bogus = bpy.data.images.load(str(text))
    _assert_refused("notes.png: not a readable image", image=bogus.name)

    # A datablock whose file has gone: Blender has no pixels for it.
    gone = tmp_path / "gone.png"
    gone.write_bytes(ldr_scene.path.read_bytes())
    vanished = bpy.data.images.load(str(gone))
    gone.unlink()
    _assert_refused("gone.png.*has no pixels", image=vanished.name)

    hdr = bpy.data.images.new("already_hdr", 8, 4, float_buffer=True)
    _assert_refused("already linear float", image=hdr.name)


def test_missing_torch_reports_the_fix(addon, ldr_scene, monkeypatch):
    from ldr2hdr.operators import jobs

    source = _ldr_image(ldr_scene)
    monkeypatch.setattr(jobs, "torch_importable", lambda: False)
    _assert_refused(r"torch is not installed.*Worker Python.*\.venv/bin/python", image=source.name)

    addon.python_path = "/nonexistent/python"
    _assert_refused("worker Python does not exist", image=source.name)


def _python_without_torch():
    for candidate in ("/usr/bin/python3", "python3"):
        try:
            probe = subprocess.run([candidate, "-c", "import numpy, sys; print(sys.version_info[0])"],
                                   capture_output=True, text=True, timeout=30, check=False)
        except OSError:
            continue
        if probe.returncode != 0 or probe.stdout.strip() != "3":
            continue
        has_torch = subprocess.run([candidate, "-c", "import importlib.util as u; "
                                    "raise SystemExit(u.find_spec('torch') is None)"],
                                   capture_output=True, timeout=30, check=False)
        if has_torch.returncode == 1:
            return candidate
    return None


def test_worker_python_without_torch(addon, ldr_scene, tmp_path, monkeypatch, source_dir):
    from ldr2hdr.operators import jobs

    python = _python_without_torch()
    if python is None:
        pytest.skip("no Python with numpy but without torch on this machine")
    # The worker imports ldr2hdr from a folder named after the package, as an installed
    # extension does.
    (tmp_path / "ldr2hdr").symlink_to(source_dir, target_is_directory=True)
    monkeypatch.setattr(jobs, "PACKAGE_DIR", tmp_path / "ldr2hdr")
    import shutil

    addon.python_path = shutil.which(python) or python
    _assert_refused(r"torch not installed for the worker Python.*Worker Python", image=_ldr_image(ldr_scene).name)
    # The preferences' Check Worker button says the same before any run.
    with pytest.raises(RuntimeError, match=r"torch.* not installed for .*python.*Worker Python"):
        bpy.ops.ldr2hdr.check_worker()


def test_check_worker_in_process(addon, capsys):
    from ldr2hdr.inference import worker

    assert bpy.ops.ldr2hdr.check_worker() == {"FINISHED"}
    assert "inference runs in Blender's process: torch " in capsys.readouterr().out
    assert worker.main(["--check"]) == worker.EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["missing"] == [] and report["torch"]


def test_worker_protocol_round_trip(tmp_path, ldr_scene):
    from ldr2hdr.inference import worker

    request = worker.Request("linearize", {"crf": "srgb"}, pixels=ldr_scene.ldr)
    worker.write_request(tmp_path, request)
    assert json.loads((tmp_path / "request.json").read_text())["pixels"] == "input.npy"
    assert worker.main([str(tmp_path)]) == worker.EXIT_OK
    response = worker.read_response(tmp_path)
    expected = pipeline.run(ldr_scene.ldr, pipeline.Settings(crf="srgb"), steps="linearize")
    np.testing.assert_array_equal(response.pixels, expected.linear)
    assert response.inverse_crf.shape == (3, 1024)

    with pytest.raises(Exception, match="unknown settings: colour"):
        worker.run_request(worker.Request("linearize", {"colour": 1}, pixels=ldr_scene.ldr))
    bad = tmp_path / "bad"
    worker.write_request(bad, worker.Request("reconstruct", {}, filepath=str(tmp_path / "none.jpg")))
    assert worker.main([str(bad)]) == worker.EXIT_ERROR
    with pytest.raises(Exception, match="none.jpg"):
        worker.read_response(bad)


# --------------------------------------------------------------------------- live linearize


def _render_composite(ldr_scene, tmp_path):
    scene = bpy.context.scene
    h, w = ldr_scene.ldr.shape[:2]
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = w, h, 100
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    bpy.ops.render.render()
    out = tmp_path / "composite.exr"
    bpy.data.images["Render Result"].save_render(str(out), scene=scene)
    return io.read_image(out).pixels


@pytest.mark.parametrize("curve", ["srgb", "gamma2.2"])
def test_live_linearize_applies_the_curve_with_builtin_nodes(addon, ldr_scene, tmp_path, curve):
    tree, _ = _compositor_with(_ldr_image(ldr_scene))
    images_before = len(bpy.data.images)
    assert bpy.ops.ldr2hdr.linearize(live=True, crf=curve) == {"FINISHED"}
    node = tree.nodes.active
    assert node.live and len(bpy.data.images) == images_before  # nothing baked
    assert node.node_tree.nodes[groups.LIVE_CURVE_NODE_NAME].bl_idname == "CompositorNodeCurveRGB"

    live = _render_composite(ldr_scene, tmp_path)
    settings = pipeline.Settings(crf=curve, dequantize=False)
    expected = pipeline.run(ldr_scene.ldr, settings, steps="linearize").linear
    # 33 straight segments, evaluated through Blender's 256-entry curve table.
    # (sRGB and gamma 2.2 differ by up to 8e-3: skipping the curve would fail this.)
    np.testing.assert_allclose(live, expected, atol=1.5e-3)
    assert np.abs(live - expected).mean() < 2e-4

    # Switching Live off bakes into the same node.
    assert bpy.ops.ldr2hdr.linearize(node=node.name, live=False) == {"FINISHED"}
    assert not node.live and groups.result_image(node) is not None
    assert len([n for n in tree.nodes if groups.is_step_node(n)]) == 1


def test_live_linearize_needs_a_node(addon, ldr_scene):
    with pytest.raises(RuntimeError, match="live linearization works on a compositor node"):
        bpy.ops.ldr2hdr.linearize(filepath=str(ldr_scene.path), live=True)


def test_failure_while_storing_leaves_nothing(addon, ldr_scene, monkeypatch):
    tree, _ = _compositor_with(_ldr_image(ldr_scene))

    def broken(node, image):
        raise RuntimeError("simulated failure while wiring the node")

    monkeypatch.setattr(groups, "set_result_image", broken)
    _assert_refused("could not store the result: simulated failure")
    assert not any(groups.is_step_node(n) for n in tree.nodes)


def _node_editor_override(tree):
    window = bpy.context.window_manager.windows[0]
    area = window.screen.areas[0]
    area.ui_type = "CompositorNodeTree"
    area.spaces.active.node_tree = tree
    region = next(r for r in area.regions if r.type == "WINDOW")
    return bpy.context.temp_override(window=window, area=area, region=region)


def test_duplicated_node_gets_its_own_tree_and_image(addon, ldr_scene):
    tree, _ = _compositor_with(_ldr_image(ldr_scene))
    assert bpy.ops.ldr2hdr.reconstruct() == {"FINISHED"}
    original = tree.nodes.active
    original_pixels = _pixels(groups.result_image(original))
    for node in tree.nodes:
        node.select = node == original
    with _node_editor_override(tree):
        assert bpy.ops.node.duplicate() == {"FINISHED"}
        # In the node editor the operators act on the editor's tree and active node.
        duplicate = tree.nodes.active
        assert duplicate != original and duplicate.node_tree != original.node_tree
        duplicate.exposure = 2.0
        assert bpy.ops.ldr2hdr.reconstruct() == {"FINISHED"}

    np.testing.assert_array_equal(_pixels(groups.result_image(original)), original_pixels)
    assert groups.result_image(duplicate) != groups.result_image(original)
    np.testing.assert_allclose(_pixels(groups.result_image(duplicate)), 4.0 * original_pixels, rtol=1e-6)

    # Deleting a node lets its inner tree go (no orphans saved with the file).
    inner_name = duplicate.node_tree.name
    groups.remove_step_node(tree, duplicate)
    assert inner_name not in bpy.data.node_groups


class _RecordingLayout:
    """Stands in for a UILayout: records what a draw function shows."""

    def __init__(self):
        self.props, self.operators, self.labels = [], [], []
        self.enabled = True

    def prop(self, data, name, **_kwargs):
        assert hasattr(data, name), name
        self.props.append(name)

    def label(self, text="", **_kwargs):
        self.labels.append(text)

    def row(self, **_kwargs):
        return self

    def operator(self, idname, **_kwargs):
        self.operators.append(idname)
        from types import SimpleNamespace

        return SimpleNamespace()


def test_node_buttons_show_parameters_and_update(addon, ldr_scene):
    tree, _ = _compositor_with(_ldr_image(ldr_scene))
    assert bpy.ops.ldr2hdr.linearize() == {"FINISHED"}
    node = tree.nodes.active
    layout = _RecordingLayout()
    # The plain Python function: Blender's draw_buttons wrapper accepts only a real UILayout.
    groups.draw_node_buttons(node, layout)
    assert {"method", "crf", "exposure", "panorama"} <= set(layout.props)
    assert layout.operators == ["ldr2hdr.linearize"] and layout.enabled
    assert "Baked" in layout.labels
    groups.draw_node_buttons(node, layout, extended=True)
    assert "tile_size" in layout.props and "source_image" in layout.props
    assert node.draw_label() == "Linearize"
