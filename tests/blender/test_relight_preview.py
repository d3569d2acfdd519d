"""Relight Preview: ``ldr2hdr relight`` inside Blender, into one image, leaving the file as it was.

The renders are tiny (32 px wide, 2 samples): a panel takes about two seconds, most of it
Cycles starting up.
"""

import math
import re

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from ldr2hdr.inference.imaging import equirect_directions  # noqa: E402
from ldr2hdr.nodes import compositor  # noqa: E402
from ldr2hdr.nodes import world as world_nodes  # noqa: E402
from ldr2hdr.operators import images  # noqa: E402
from ldr2hdr.operators import relight_preview  # noqa: E402
from ldr2hdr.render import stage  # noqa: E402

SIZE, SAMPLES = 32, 2
PANEL_H, PANEL_W = stage.panel_shape(SIZE)


def _sunny(height=64, sky=0.05):
    """A ``height x 2 height`` map: a dim sky and a 3 deg sun 38 deg up, 97 % of the light facing it."""
    dirs = equirect_directions(height, 2 * height)
    toward = np.array([0.5, 0.6, -0.62]) / np.linalg.norm([0.5, 0.6, -0.62])
    hdr = np.where(dirs[..., 1:2] > 0, sky, 0.3 * sky).repeat(3, axis=-1).astype(np.float32)
    hdr[dirs @ toward > math.cos(math.radians(1.5))] = 2000.0
    return hdr


def _preview(**kwargs):
    return bpy.ops.ldr2hdr.relight_preview(size=SIZE, samples=SAMPLES, **kwargs)


def _previews():
    return [i for i in bpy.data.images if i.get(images.TAG_STEP) == relight_preview.STEP]


def _panels(image, count):
    pixels = images.image_pixels(image)
    assert pixels.shape == (PANEL_H, count * PANEL_W, 3)
    return [pixels[:, i * PANEL_W:(i + 1) * PANEL_W] for i in range(count)]


@pytest.fixture
def lit_world(addon):
    image = images.store_image("sky", _sunny())
    assert bpy.ops.ldr2hdr.set_world_lighting(image=image.name) == {"FINISHED"}
    return image


def test_preview_of_the_worlds_map_with_the_sun_as_a_lamp(lit_world):
    assert _preview() == {"FINISHED"}
    (image,) = _previews()
    assert image.name == relight_preview.PREVIEW_NAME
    assert not image.is_float and image.colorspace_settings.name == "sRGB" and image.packed_file is not None
    assert image.size[:] == (2 * PANEL_W, PANEL_H)
    panels = _panels(image, 2)
    for panel in panels:
        assert np.isfinite(panel).all() and panel.mean() > 0.05 and panel.std() > 0.05  # rendered, not blank
    # one exposure for both: map and map - sun + lamp light the scene alike
    assert abs(panels[0].mean() - panels[1].mean()) < 0.05
    log = image[relight_preview.LOG].splitlines()
    assert log[0].startswith("sky: sun at elevation")
    assert log[1].startswith("panel 1 map: diffuse sphere mean")
    assert log[2].startswith("panel 2 map without sun + Sun lamp")
    assert image[images.TAG_SOURCE] == "sky"


def _diffuse_means(image):
    return [float(m) for m in re.findall(r"diffuse sphere mean ([0-9.eE+-]+)", image[relight_preview.LOG])]


def test_the_preview_of_the_world_follows_its_rotation_and_strength(lit_world):
    world = bpy.context.scene.world
    assert _preview() == {"FINISHED"}
    plain = _diffuse_means(_previews()[0])
    world_nodes.mapping_node(world).inputs["Rotation"].default_value[2] = math.radians(90.0)
    world_nodes.background_node(world).inputs["Strength"].default_value = 2.0
    assert _preview() == {"FINISHED"}
    (image,) = _previews()
    turned = _diffuse_means(image)
    assert "World: turned 90 deg about the vertical, strength 2" in image[relight_preview.LOG]
    # the map and the lamp panel: twice the light (measured 1.96-2.00 x: the turned sun lights
    # another side of the sphere; tests/render checks where the turn puts the map and the lamp)
    assert len(plain) == len(turned) == 2
    for before, after in zip(plain, turned):
        assert after == pytest.approx(2.0 * before, rel=0.1)
    # a named image is previewed as it is (the World's turn is the World's, not the image's)
    assert _preview(image=lit_world.name) == {"FINISHED"}
    assert "World:" not in _previews()[0][relight_preview.LOG]


def test_second_run_replaces_the_preview_and_keeps_its_users(lit_world):
    assert _preview(extract_sun=False) == {"FINISHED"}
    (first,) = _previews()
    assert first.size[:] == (PANEL_W, PANEL_H)
    # Someone shows it (an Image node here; an Image Editor the same way): the new one takes its place.
    tree, node = _image_node(first)
    reference = images.store_image("reference", _sunny(sky=0.1))
    assert _preview(reference=reference.name) == {"FINISHED"}
    (second,) = _previews()
    assert second.name == relight_preview.PREVIEW_NAME and node.image == second
    assert len(_panels(second, 3)) == 3
    assert second[relight_preview.LOG].splitlines()[-1].startswith("panel 3 reference reference:")


def _image_node(image):
    tree = compositor.scene_tree(bpy.context.scene, create=True)
    node = tree.nodes.new("CompositorNodeImage")
    node.image = image
    return tree, node


def test_after_extract_sun_the_preview_shows_the_original_map(lit_world):
    assert bpy.ops.ldr2hdr.extract_sun() == {"FINISHED"}
    assert world_nodes.environment_node(bpy.context.scene.world).image.name == "sky (no sun)"
    assert _preview(extract_sun=False) == {"FINISHED"}
    assert _previews()[0][images.TAG_SOURCE] == "sky"


def _snapshot(scene):
    """What the user has: every datablock by name, the active scene and the settings a render touches."""
    ids = {attr: sorted(d.name for d in getattr(bpy.data, attr)) for attr in (
        "scenes", "objects", "meshes", "materials", "worlds", "lights", "cameras", "images", "collections",
        "node_groups", "textures")}
    render, cycles, view = scene.render, scene.cycles, scene.view_settings
    world_tree = scene.world.node_tree
    return {
        "ids": ids,
        "window scene": bpy.context.window.scene.name if bpy.context.window else None,
        "context scene": bpy.context.scene.name,
        "world": scene.world.name,
        "world nodes": sorted((n.name, n.bl_idname) for n in world_tree.nodes),
        "world links": len(world_tree.links),
        "environment": world_nodes.environment_node(scene.world).image.name,
        "strength": world_nodes.background_node(scene.world).inputs["Strength"].default_value,
        "render": (render.engine, render.resolution_x, render.resolution_y, render.resolution_percentage,
                   render.filepath, render.film_transparent, render.image_settings.file_format,
                   render.image_settings.color_depth, scene.camera.name if scene.camera else None,
                   scene.frame_current),
        "cycles": (cycles.samples, cycles.device, cycles.use_denoising, cycles.max_bounces, cycles.seed,
                   cycles.sample_clamp_indirect, cycles.use_adaptive_sampling),
        "view": (view.view_transform, view.look, view.exposure, view.gamma),
        "objects in scene": sorted(o.name for o in scene.objects),
    }


def _render_composite(scene, path):
    bpy.data.images["Render Result"].save_render(str(path), scene=scene)
    return images.image_pixels(bpy.data.images.load(str(path), check_existing=False))


def test_the_users_scene_world_settings_and_last_render_are_unchanged(lit_world, tmp_path):
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 24, 12, 100
    scene.render.filepath = "//renders/frame_"
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    scene.cycles.samples, scene.cycles.sample_clamp_indirect = 7, 3.0
    scene.view_settings.view_transform = "Standard"
    # The user's last render: a composite of a gradient (no 3D render needed headless).
    gradient = np.tile(np.linspace(0.1, 3.0, 24, dtype=np.float32)[None, :, None], (12, 1, 3))
    user_image = images.store_image("user picture", gradient)
    tree, node = _image_node(user_image)
    for other in [n for n in tree.nodes if n.bl_idname in ("CompositorNodeRLayers", "CompositorNodeViewer")]:
        tree.nodes.remove(other)
    tree.links.new(node.outputs["Image"], compositor.output_socket(tree))
    bpy.ops.render.render()
    last_render = _render_composite(scene, tmp_path / "before.exr")
    np.testing.assert_allclose(last_render, gradient, rtol=1e-6)

    before = _snapshot(scene)
    assert _preview(image=lit_world.name) == {"FINISHED"}
    after = _snapshot(scene)
    after["ids"]["images"].remove(relight_preview.PREVIEW_NAME)
    before["ids"]["images"] = [n for n in before["ids"]["images"] if n != "before.exr"]
    after["ids"]["images"] = [n for n in after["ids"]["images"] if n != "before.exr"]
    assert after == before
    np.testing.assert_array_equal(_render_composite(scene, tmp_path / "after.exr"), last_render)


@pytest.mark.parametrize("case, match", [
    ("nothing", "no HDR map: select an Image node"),
    ("missing", "no image named 'nope'"),
    ("ldr", "photo is an LDR image: the preview needs a linear HDR map"),
    ("square", "not an equirectangular map: 32x32 is not 2:1"),
    ("nan", "bad: the map has values that are not finite"),
    ("reference", "not an equirectangular reference map: 30x10 is not 2:1"),
])
def test_bad_input_is_one_error_line_and_changes_nothing(addon, case, match):
    kwargs = {}
    if case == "missing":
        kwargs["image"] = "nope"
    elif case == "ldr":
        photo = bpy.data.images.new("photo", 64, 32)  # 8-bit: code values, not light
        kwargs["image"] = photo.name
    elif case == "square":
        kwargs["image"] = images.store_image("square", np.ones((32, 32, 3), np.float32)).name
    elif case == "nan":
        bad = _sunny()
        bad[3, 5] = np.nan
        kwargs["image"] = images.store_image("bad", bad).name
    elif case == "reference":
        kwargs["image"] = images.store_image("sky", _sunny()).name
        kwargs["reference"] = images.store_image("strip", np.ones((10, 30, 3), np.float32)).name
    before = sorted(i.name for i in bpy.data.images), sorted(s.name for s in bpy.data.scenes)
    with pytest.raises(RuntimeError) as raised:
        _preview(**kwargs)
    message = str(raised.value).strip()
    assert message.count("\n") == 0 and "Traceback" not in message, message
    assert message.startswith("Error: Relight Preview: ")
    assert re.search(match, message), message
    assert (sorted(i.name for i in bpy.data.images), sorted(s.name for s in bpy.data.scenes)) == before


def test_an_active_node_without_an_image_falls_back_to_the_world(lit_world):
    tree = compositor.scene_tree(bpy.context.scene, create=True)
    tree.nodes.active = tree.nodes.new("CompositorNodeBlur")
    assert _preview(extract_sun=False) == {"FINISHED"}
    assert _previews()[0][images.TAG_SOURCE] == "sky"


def test_undo_removes_the_preview_and_redo_brings_it_back(lit_world):
    # Background mode has no undo stack until a step is pushed; the third positional argument
    # makes the call push one, as a click in the UI does.
    bpy.ops.ed.undo_push(message="before Relight Preview")
    assert bpy.ops.ldr2hdr.relight_preview("EXEC_DEFAULT", True, size=SIZE, samples=SAMPLES,
                                           extract_sun=False) == {"FINISHED"}
    shown = images.image_pixels(_previews()[0])
    assert bpy.ops.ed.undo() == {"FINISHED"}
    assert _previews() == []
    assert world_nodes.environment_node(bpy.context.scene.world).image.name == "sky"
    assert bpy.ops.ed.redo() == {"FINISHED"}
    (image,) = _previews()
    np.testing.assert_array_equal(images.image_pixels(image), shown)
