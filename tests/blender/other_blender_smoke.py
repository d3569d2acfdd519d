"""Smoke test of the extension in another Blender (e.g. the 4.5 LTS bpy wheel).

Run by ``test_other_blender.py`` as ``OTHER_PYTHON other_blender_smoke.py PACKAGE_PARENT
WORKER_PYTHON OUT_DIR``: that Python has bpy but usually no torch (and no OpenImageIO), so
inference goes through the worker process (WORKER_PYTHON, the project's venv), as it does for
users, while Extract Sun and Relight Preview run in that Blender's own Python.

Checks, in order: every operator and the menu register; Reconstruct HDR (twice) and Restore
Highlights run and the composite carries the result; Set World Lighting; Extract Sun makes
one Sun lamp pointing at the map's sun under the World's rotation, following rotation and
strength changes, undone and redone like a UI action, one lamp after a second run; Cycles in
this Blender puts a map's sun and the equivalent lamp in the same place; Relight Preview makes
(and on a second run replaces) its image and leaves the scene as it was; the add-on disables
and enables again cleanly. Exits non-zero with a message on the first failed check; prints one
``check: ...`` line per passed group.
"""

import math
import os
import sys
import tempfile
import time

package_parent, worker_python, out_dir = sys.argv[1:4]
sys.path.insert(0, package_parent)
os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="ldr2hdr-other-blender-")

import bpy  # noqa: E402  (first: addon_utils is importable only after bpy)
import addon_utils  # noqa: E402
import numpy as np  # noqa: E402

STARTED = time.perf_counter()


def _raise(exc):
    raise exc


def check(condition, message):
    if not condition:
        raise SystemExit(f"FAILED on Blender {bpy.app.version_string}: {message}")


def passed(what):
    print(f"check: {what} ({time.perf_counter() - STARTED:.1f} s)", flush=True)


# A fresh file: it also starts the undo stack, which background mode otherwise lacks.
bpy.ops.wm.read_homefile(app_template="")
addon_utils.enable("ldr2hdr", default_set=True, handle_error=_raise)
from ldr2hdr import nodes  # noqa: E402
from ldr2hdr.inference.imaging import equirect_directions  # noqa: E402
from ldr2hdr.inference.lighting.sun import extract_sun  # noqa: E402
from ldr2hdr.nodes import compositor, groups  # noqa: E402
from ldr2hdr.nodes import world as world_nodes  # noqa: E402
from ldr2hdr.operators import images, relight_preview  # noqa: E402
from ldr2hdr.render import relight, stage  # noqa: E402

OPERATORS = ("estimate_crf", "linearize", "restore_highlights", "reconstruct", "set_world_lighting", "extract_sun",
             "relight_preview", "check_worker")
check(all(name in dir(bpy.ops.ldr2hdr) for name in OPERATORS),
      f"operators missing: {[n for n in OPERATORS if n not in dir(bpy.ops.ldr2hdr)]}")
check(hasattr(bpy.types, nodes.NODE_MT_ldr2hdr_add_hdr.bl_idname), "the HDR menu is not registered")
check(all(cls.is_registered for cls in groups.NODE_CLASSES), "step nodes not registered")
passed(f"{len(OPERATORS)} operators, the HDR menu and the step nodes register")

prefs = bpy.context.preferences.addons["ldr2hdr"].preferences
prefs.python_path = worker_python
scene = bpy.context.scene

# ----------------------------------------------------------------------------- the steps
# A 64x32 LDR "panorama": a gradient sky with a clipped sun.
h, w = 32, 64
ldr = np.tile(np.linspace(0.1, 0.8, w, dtype=np.float32)[None, :, None], (h, 1, 3))
ldr[4:10, 20:30] = 1.0
source = bpy.data.images.new("photo", w, h, alpha=True)
rgba = np.ones((h, w, 4), dtype=np.float32)
rgba[..., :3] = ldr[::-1]
source.pixels.foreach_set(rgba.ravel())

tree = compositor.scene_tree(scene, create=True)
for node in list(tree.nodes):
    if node.bl_idname in ("CompositorNodeRLayers", "CompositorNodeViewer"):
        tree.nodes.remove(node)  # no 3D render: the composite is the image alone
image_node = tree.nodes.new("CompositorNodeImage")
image_node.image = source
tree.links.new(image_node.outputs["Image"], compositor.output_socket(tree))
tree.nodes.active = image_node

for _ in range(2):
    check(bpy.ops.ldr2hdr.reconstruct() == {"FINISHED"}, "reconstruct did not finish")
step_nodes = [n for n in tree.nodes if groups.is_step_node(n)]
check(len(step_nodes) == 1, f"expected one step node, found {len(step_nodes)}")
result = groups.result_image(step_nodes[0])
pixels = images.image_pixels(result)
check(pixels[4:10, 20:30].max(axis=-1).mean() > 1.5, "no restored highlights")

scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = w, h, 100
scene.view_settings.view_transform = "Standard"
scene.render.image_settings.file_format = "OPEN_EXR"
scene.render.image_settings.color_depth = "32"
bpy.ops.render.render()
path = os.path.join(out_dir, "composite.exr")
bpy.data.images["Render Result"].save_render(path, scene=scene)
rendered = images.image_pixels(bpy.data.images.load(path))
check(np.abs(rendered - pixels).max() < 1e-6, "the composite differs from the result image")
passed("Reconstruct HDR runs twice (one node) and the composite carries its result exactly")

check(bpy.ops.ldr2hdr.restore_highlights(image=source.name) == {"FINISHED"}, "restore highlights")
restored = images.find_result_image("restore", source.name)
check(restored is not None and restored.is_float, "no float Restore Highlights result")
check(images.image_pixels(restored)[4:10, 20:30].max(axis=-1).mean() > 1.5, "restore: no restored highlights")
passed("Restore Highlights runs (image=)")

check(bpy.ops.ldr2hdr.set_world_lighting(image=result.name, strength=2.0) == {"FINISHED"}, "world lighting")
env = scene.world.node_tree.nodes["ldr2hdr Environment"]
check(env.image == result, "the world does not show the result")
passed("Set World Lighting")

# ----------------------------------------------------------------------------- Extract Sun
# Runs in Blender's Python, so the sun core must import there without torch: a 2 deg sun on a
# dim sky becomes a Sun lamp whose drivers follow the World's rotation and strength.
H, W = 256, 512
directions = equirect_directions(H, W)
toward_sun = np.array([0.5, 0.6, -0.62]) / np.linalg.norm([0.5, 0.6, -0.62])
sky = np.full((H, W, 3), 0.1, np.float32)
sky[np.degrees(np.arccos(np.clip(directions @ toward_sun, -1.0, 1.0))) < 1.0] = 500.0
core = extract_sun(sky)
check(core.sun is not None, f"the core finds no sun: {core.reason}")
sunny = images.store_image("sunny sky", sky)
ROTATION, STRENGTH = 0.3, 2.0
check(bpy.ops.ldr2hdr.set_world_lighting(image=sunny.name, strength=STRENGTH, rotation=ROTATION) == {"FINISHED"},
      "world lighting with the sunny sky")


def our_lamps():
    return [o for o in bpy.data.objects if o.type == "LIGHT" and world_nodes.SUN_AZIMUTH in o]


def lamp_axis(lamp):
    """Where the lamp's light comes from (its local +Z) in world axes, after the drivers ran."""
    bpy.context.view_layer.update()
    return np.array(lamp.matrix_world.to_3x3().col[2])


def rotate_z(vector, angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1], vector[2]])


def environment_image():
    return world_nodes.environment_node(bpy.context.scene.world).image


bpy.ops.ed.undo_push(message="before Extract Sun")
# The third positional argument asks for an undo step, as a click in the UI makes one.
check(bpy.ops.ldr2hdr.extract_sun("EXEC_DEFAULT", True) == {"FINISHED"}, "extract sun")
lamps = our_lamps()
check(len(lamps) == 1 and lamps[0].name in scene.collection.objects, f"expected one sun lamp, found {len(lamps)}")
lamp = lamps[0]
check(environment_image().name == "sunny sky (no sun)",
      f"the world shows {environment_image().name!r}, not the map without its sun")
check(abs(lamp.data.energy - STRENGTH * core.sun.strength) < 1e-4 * core.sun.strength,
      f"sun lamp strength {lamp.data.energy}, expected {STRENGTH} x {core.sun.strength}")
# The map turns by -rotation (the Mapping node turns the lookup by +rotation): so does the lamp.
expected = rotate_z(np.array(world_nodes.map_direction_to_world(core.sun.direction)), -ROTATION)
check(np.abs(lamp_axis(lamp) - expected).max() < 1e-5, f"lamp axis {lamp_axis(lamp)}, expected {expected}")
mapping = world_nodes.mapping_node(scene.world)
mapping.inputs["Rotation"].default_value[2] += 1.0
check(np.abs(lamp_axis(lamp) - rotate_z(expected, -1.0)).max() < 1e-5,
      "the sun lamp does not follow the world rotation")
world_nodes.background_node(scene.world).inputs["Strength"].default_value = 0.5
bpy.context.view_layer.update()
check(abs(lamp.data.energy - 0.5 * core.sun.strength) < 1e-4 * core.sun.strength,
      "the sun lamp does not follow the world strength")
mapping.inputs["Rotation"].default_value[2] = ROTATION
world_nodes.background_node(scene.world).inputs["Strength"].default_value = STRENGTH
passed("Extract Sun: one lamp on the map's sun under the World's rotation; drivers follow rotation and strength")

check(bpy.ops.ed.undo() == {"FINISHED"}, "undo")
check(our_lamps() == [], "undo left the sun lamp")
check(environment_image().name == "sunny sky", f"after undo the world shows {environment_image().name!r}")
check(np.array_equal(images.image_pixels(environment_image()), sky), "after undo the map differs")
check(bpy.ops.ed.redo() == {"FINISHED"}, "redo")
scene, sunny = bpy.context.scene, bpy.data.images["sunny sky"]  # undo reloads the file's data
check(len(our_lamps()) == 1 and environment_image().name == "sunny sky (no sun)", "redo did not bring the lamp back")
lamp = our_lamps()[0]
check(np.abs(lamp_axis(lamp) - expected).max() < 1e-5, "after redo the lamp is off the sun")
for _ in range(2):
    check(bpy.ops.ldr2hdr.set_world_lighting(image=sunny.name, strength=STRENGTH, rotation=ROTATION,
                                             extract_sun=True) == {"FINISHED"}, "set world lighting + extract sun")
check(our_lamps() == [lamp] and environment_image().name == "sunny sky (no sun)", "a second run added a lamp")
check(len(lamp.animation_data.drivers) == 1 and len(lamp.data.animation_data.drivers) == 1, "drivers duplicated")
check(np.abs(lamp_axis(lamp) - expected).max() < 1e-5, "after a second run the lamp is off the sun")
passed("Extract Sun: undo removes the lamp and restores the map, redo brings them back, re-runs keep one lamp")

# ----------------------------------------------------------------------------- Cycles conventions
# This Blender's Environment Texture and Sun lamp must agree with the map's convention: a map
# holding only a 3 deg sun and a black world plus the lamp made from it light the diffuse sphere alike.
disc = np.zeros((64, 128, 3), np.float32)
small_dirs = equirect_directions(64, 128)
inside = small_dirs @ toward_sun > math.cos(math.radians(1.5))
disc[inside] = 3000.0
found = extract_sun(disc)
check(found.sun is not None, f"no sun in the disc map: {found.reason}")
by_map = relight.render(disc, None, width=48, samples=8)
by_lamp = relight.render(None, relight.Lamp.from_sun(found.sun), width=48, samples=8)
mirrored = relight.Lamp.from_sun(found.sun)
mirrored = relight.Lamp(tuple(np.array(mirrored.direction) * [-1.0, 1.0, 1.0]), mirrored.strength, mirrored.color,
                        mirrored.angle_deg)
by_mirrored = relight.render(None, mirrored, width=48, samples=8)
mask = stage.interior_mask(stage.DIFFUSE, *by_map.shape[:2])
y_map, y_lamp, y_mirrored = (stage.luminance(image)[mask] for image in (by_map, by_lamp, by_mirrored))


def rel_rms(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.mean(b))


check(abs(y_lamp.mean() / y_map.mean() - 1.0) < 0.05, f"sphere mean lamp {y_lamp.mean()} vs map {y_map.mean()}")
check(rel_rms(y_lamp, y_map) < 0.15, f"lamp vs map relative RMS {rel_rms(y_lamp, y_map):.3f}")
check(rel_rms(y_mirrored, y_map) > 0.3, f"a mirrored lamp matches the map ({rel_rms(y_mirrored, y_map):.3f})")
passed(f"Cycles: the map's sun and its lamp light the sphere alike (relative RMS {rel_rms(y_lamp, y_map):.3f}, "
       f"mirrored lamp {rel_rms(y_mirrored, y_map):.3f})")

# ----------------------------------------------------------------------------- Relight Preview


def user_state():
    return (bpy.context.scene.name, sorted(s.name for s in bpy.data.scenes), scene.world.name,
            environment_image().name, sorted(o.name for o in bpy.data.objects), sorted(m.name for m in bpy.data.meshes),
            sorted(w.name for w in bpy.data.worlds), sorted(i.name for i in bpy.data.images
                                                             if i.name != relight_preview.PREVIEW_NAME),
            scene.render.engine, scene.render.resolution_x, scene.render.resolution_y, scene.render.filepath,
            scene.render.image_settings.file_format, scene.view_settings.view_transform, scene.camera)


before = user_state()
SIZE = 32
# First the active compositor node's result (the Reconstruct HDR node), then, with no active
# node, the map the World shows (its original: the World shows it without its sun).
for run, (kwargs, expected_source) in enumerate((({}, "photo_hdr"), ({"extract_sun": False}, "sunny sky"))):
    if run == 1:
        compositor.scene_tree(bpy.context.scene).nodes.active = None
    check(bpy.ops.ldr2hdr.relight_preview(size=SIZE, samples=2, **kwargs) == {"FINISHED"}, "relight preview")
    previews = [i for i in bpy.data.images if i.get(images.TAG_STEP) == relight_preview.STEP]
    check(len(previews) == 1 and previews[0].name == relight_preview.PREVIEW_NAME,
          f"expected one preview image, found {[i.name for i in previews]}")
    panel_h, panel_w = stage.panel_shape(SIZE)
    panels = 2 if run == 0 else 1
    check(previews[0].size[:] == (panels * panel_w, panel_h), f"preview size {previews[0].size[:]}")
    shown = images.image_pixels(previews[0])
    check(np.isfinite(shown).all() and shown.mean() > 0.05 and shown.std() > 0.05, "a blank preview")
    check(previews[0][images.TAG_SOURCE] == expected_source, f"previewed {previews[0][images.TAG_SOURCE]!r}")
    check(user_state() == before, f"the preview changed the user's file: {before} -> {user_state()}")
log = previews[0][relight_preview.LOG]
passed("Relight Preview: one image, replaced on a second run; the scene, World and settings unchanged")
print(log)

for _ in range(2):
    addon_utils.disable("ldr2hdr", default_set=True, handle_error=_raise)
    check(not any(name in dir(bpy.ops.ldr2hdr) for name in OPERATORS), "operators left after disabling")
    check(not hasattr(bpy.types, nodes.NODE_MT_ldr2hdr_add_hdr.bl_idname), "the HDR menu left after disabling")
    addon_utils.enable("ldr2hdr", default_set=True, handle_error=_raise)
    check(all(name in dir(bpy.ops.ldr2hdr) for name in OPERATORS), "operators missing after enabling again")
passed("disable and enable again, twice")
print(f"ok: ldr2hdr works on Blender {bpy.app.version_string}")
