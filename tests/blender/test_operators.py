"""The step operators, run headless on an LDR made from a real HDR panorama.

Each operator must add exactly one group node and one packed float image, wire the node
in place of the Image node, update both on a re-run, and give the same pixels as
``pipeline.run`` and the command line.
"""

import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from ldr2hdr.inference import cli, io, pipeline  # noqa: E402
from ldr2hdr.nodes import compositor, groups  # noqa: E402
from ldr2hdr.operators import images  # noqa: E402
from .operator_helpers import (  # noqa: E402
    HDR_STEPS,
    OPERATORS,
    clipped_mask,
    compositor_with,
    datablock_counts,
    load_ldr_image,
    read_alpha,
    read_pixels,
    render_composite,
    run_step,
)


# --------------------------------------------------------------------------- node runs


@pytest.mark.parametrize("step", list(OPERATORS))
def test_step_adds_one_node_and_one_float_image(addon, ldr_scene, step):
    source = load_ldr_image(ldr_scene)
    tree, image_node = compositor_with(source)
    nodes_before, images_before, groups_before = datablock_counts()

    # The photo was made with the sRGB curve; forcing it makes the expected values exact
    # (how well the learned estimate recovers a curve is the evaluation harness's job).
    assert (run_step(step) if step == "estimate-crf" else run_step(step, crf="srgb")) == {"FINISHED"}

    nodes_after, images_after, _ = datablock_counts()
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
    assert np.all(read_alpha(result) == 1.0)

    # Wired in place of the Image node: Image -> step node -> compositor output.
    assert node.inputs[0].links[0].from_node == image_node
    if step == "estimate-crf":
        assert result.colorspace_settings.name == "Non-Color"
        assert result.size[:] == (1024, 1)
        curve = read_pixels(result)[0]
        assert np.all(np.diff(curve, axis=0) >= 0) and curve[0].max() < 1e-3 and np.allclose(curve[-1], 1.0)
    else:
        assert result.colorspace_settings.name == "Linear Rec.709"
        assert compositor.output_socket(tree).links[0].from_node == node
        pixels = read_pixels(result)
        assert pixels.shape == ldr_scene.ldr.shape
        clipped = clipped_mask(ldr_scene.ldr)
        if step in HDR_STEPS:
            # Restored radiance exceeds the clip level where the photo was clipped (a functional
            # check of the operator: the truth here is 6.8 on average and the energy trees put back
            # about 1.5, a known under-estimate of this small low-sun scene that the harness measures)...
            assert pixels[clipped].max(axis=-1).mean() > 1.25
            assert (pixels[clipped].max(axis=-1) > 1.0).mean() > 0.9
        else:
            assert pixels.max() <= 1.0 + 1e-6
        # ...and dark, unclipped pixels are the sRGB-decoded values in every step.
        dark = ldr_scene.ldr.max(axis=-1) < 0.5
        assert np.allclose(pixels[dark], ldr_scene.hdr[dark], rtol=0.03, atol=2e-3)

    # A re-run (from the Image node or from the step node) updates, never adds.
    snapshot = datablock_counts()
    tree.nodes.active = image_node
    assert run_step(step) == {"FINISHED"}
    tree.nodes.active = node
    assert run_step(step) == {"FINISHED"}
    assert datablock_counts() == snapshot
    assert len([n for n in tree.nodes if groups.is_step_node(n)]) == 1
    assert groups.result_image(node).name == new_images[0]
    assert len(bpy.data.node_groups) == groups_before + 1


def test_rerun_uses_node_parameters_and_keeps_image_users(addon, ldr_scene):
    tree, _ = compositor_with(load_ldr_image(ldr_scene))
    assert bpy.ops.ldr2hdr.reconstruct() == {"FINISHED"}
    node = tree.nodes.active
    first = read_pixels(groups.result_image(node))
    name = groups.result_image(node).name
    assert bpy.ops.ldr2hdr.set_world_lighting(image=name) == {"FINISHED"}

    node.exposure = 1.0
    assert bpy.ops.ldr2hdr.reconstruct(node=node.name) == {"FINISHED"}
    second = groups.result_image(node)
    assert second.name == name
    np.testing.assert_allclose(read_pixels(second), 2.0 * first, rtol=1e-6)
    # The world still shows the refreshed image (users moved to the new buffer).
    env = bpy.context.scene.world.node_tree.nodes["ldr2hdr Environment"]
    assert env.image == second

    # An explicit operator property wins over the node and is stored on it.
    assert bpy.ops.ldr2hdr.reconstruct(node=node.name, exposure=-1.0) == {"FINISHED"}
    assert node.exposure == -1.0
    np.testing.assert_allclose(read_pixels(groups.result_image(node)), 0.5 * first, rtol=1e-6)


def test_composite_render_to_exr_carries_restored_values(addon, ldr_scene, tmp_path):
    tree, _ = compositor_with(load_ldr_image(ldr_scene))
    assert bpy.ops.ldr2hdr.restore_highlights() == {"FINISHED"}
    expected = read_pixels(groups.result_image(tree.nodes.active))

    rendered = render_composite(ldr_scene, tmp_path)
    assert rendered.max() > 1.5
    assert rendered[clipped_mask(ldr_scene.ldr)].max(axis=-1).mean() > 1.5
    np.testing.assert_allclose(rendered, expected, rtol=1e-6, atol=1e-7)


def test_result_survives_save_and_reload(addon, ldr_scene, tmp_path):
    tree, _ = compositor_with(load_ldr_image(ldr_scene))
    assert bpy.ops.ldr2hdr.reconstruct() == {"FINISHED"}
    name = groups.result_image(tree.nodes.active).name
    expected = read_pixels(bpy.data.images[name])
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    tree = compositor.scene_tree(bpy.context.scene)
    node = next(n for n in tree.nodes if groups.is_step_node(n))
    assert groups.result_image(node).name == name
    np.testing.assert_array_equal(read_pixels(bpy.data.images[name]), expected)


# --------------------------------------------------------------------------- same pixels as the CLI


def test_node_run_matches_command_line(addon, ldr_scene, tmp_path):
    tree, _ = compositor_with(load_ldr_image(ldr_scene))
    assert bpy.ops.ldr2hdr.reconstruct(exposure=0.5, crf="gamma2.2") == {"FINISHED"}
    ours = read_pixels(groups.result_image(tree.nodes.active))

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
    from_image = read_pixels(bpy.data.images["painted_linear"])
    np.testing.assert_allclose(from_image, expected, rtol=1e-5, atol=1e-6)

    # A file is decoded by the worker exactly as the command line decodes it.
    assert bpy.ops.ldr2hdr.linearize(filepath=str(ldr_scene.path)) == {"FINISHED"}
    from_file = read_pixels(bpy.data.images[f"{ldr_scene.path.stem}_linear"])
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
    assert bpy.ops.ldr2hdr.linearize(image=load_ldr_image(ldr_scene).name) == {"FINISHED"}
    in_process = read_pixels(bpy.data.images[f"{ldr_scene.path.stem}_linear"])
    addon.python_path = sys.executable
    assert bpy.ops.ldr2hdr.linearize(image=f"{ldr_scene.path.name}") == {"FINISHED"}
    np.testing.assert_array_equal(read_pixels(bpy.data.images[f"{ldr_scene.path.stem}_linear"]), in_process)


def test_weights_folder_preference_reaches_the_models(addon, ldr_scene, tmp_path):
    import shutil

    from ldr2hdr.inference.crf import network as crf_net

    wdir = tmp_path / "weights"
    wdir.mkdir()
    shutil.copy(crf_net.WEIGHTS_FILE.parent / "manifest.json", wdir / "manifest.json")
    (wdir / "crf_net.safetensors").write_bytes(crf_net.WEIGHTS_FILE.read_bytes() + b"\0")  # not the listed file
    addon.weights_dir = str(wdir)
    try:
        before = datablock_counts()
        with pytest.raises(RuntimeError, match="sha256"):
            bpy.ops.ldr2hdr.linearize(filepath=str(ldr_scene.path))
        assert datablock_counts() == before
        shutil.copy(crf_net.WEIGHTS_FILE, wdir / "crf_net.safetensors")  # the listed file: accepted
        assert bpy.ops.ldr2hdr.linearize(filepath=str(ldr_scene.path)) == {"FINISHED"}
    finally:
        addon.weights_dir = ""


def test_node_methods_match_pipeline():
    assert tuple(item[0] for item in groups.METHOD_ITEMS) == pipeline.METHODS
    assert groups.DEFAULT_METHOD == pipeline.Settings().method
    assert set(OPERATORS) == set(pipeline.STEPS) == set(groups.STEPS)


def test_units_option_scales_a_file_with_exif_and_warns_without(addon, ldr_scene, tmp_path, capfd):
    """Units: physical from the EXIF the worker reads from the file; a generated image has no
    EXIF, so it keeps the relative scale and the operator says so."""
    import OpenImageIO as oiio

    from ldr2hdr.inference.lighting import units

    assert tuple(item[0] for item in groups.SCALE_ITEMS) == pipeline.SCALE_MODES
    buf = oiio.ImageBuf(np.ascontiguousarray(np.round(ldr_scene.ldr * 255).astype(np.uint8)))
    for name, value in {"ExposureTime": 1 / 60, "FNumber": 8.0, "Exif:PhotographicSensitivity": 100}.items():
        buf.specmod().attribute(name, value)
    path = tmp_path / "camera.jpg"
    assert buf.write(str(path)), buf.geterror()
    relative = pipeline.run(io.read_image(path).pixels, pipeline.Settings(method="classical"), steps="linearize").linear
    assert bpy.ops.ldr2hdr.linearize(filepath=str(path), method="classical", scale="exif") == {"FINISHED"}
    got = read_pixels(bpy.data.images["camera_linear"])
    np.testing.assert_allclose(got, relative * units.exif_scale(1 / 60, 8.0, 100), rtol=1e-4)

    h, w = ldr_scene.ldr.shape[:2]
    generated = bpy.data.images.new("painted", w, h, alpha=True)
    rgba = np.ones((h, w, 4), dtype=np.float32)
    rgba[..., :3] = ldr_scene.ldr[::-1]
    generated.pixels.foreach_set(rgba.ravel())
    capfd.readouterr()
    assert bpy.ops.ldr2hdr.linearize(image="painted", method="classical", scale="exif") == {"FINISHED"}
    out = "".join(capfd.readouterr())
    assert "Warning" in out and "no EXIF" in out, out
