"""Smoke test of the extension in another Blender (e.g. the 4.5 LTS bpy wheel).

Run by ``test_other_blender.py`` as ``OTHER_PYTHON other_blender_smoke.py PACKAGE_PARENT
WORKER_PYTHON OUT_DIR``: that Python has bpy but usually no torch, so inference goes
through the worker process (WORKER_PYTHON, the project's venv), as it does for users.
Exits non-zero with a message on the first failed check.
"""

import os
import sys
import tempfile

package_parent, worker_python, out_dir = sys.argv[1:4]
sys.path.insert(0, package_parent)
os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="ldr2hdr-other-blender-")

import bpy  # noqa: E402  (first: addon_utils is importable only after bpy)
import addon_utils  # noqa: E402
import numpy as np  # noqa: E402


def _raise(exc):
    raise exc


def check(condition, message):
    if not condition:
        raise SystemExit(f"FAILED on Blender {bpy.app.version_string}: {message}")


addon_utils.enable("ldr2hdr", default_set=True, handle_error=_raise)
from ldr2hdr.nodes import compositor, groups  # noqa: E402
from ldr2hdr.operators import images  # noqa: E402

prefs = bpy.context.preferences.addons["ldr2hdr"].preferences
prefs.python_path = worker_python
scene = bpy.context.scene

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

check(bpy.ops.ldr2hdr.set_world_lighting(image=result.name, strength=2.0) == {"FINISHED"}, "world lighting")
env = scene.world.node_tree.nodes["ldr2hdr Environment"]
check(env.image == result, "the world does not show the result")

# Extract Sun (runs in Blender's Python, so the sun core must import there without torch): a
# 2 deg sun on a dim sky becomes a Sun lamp whose drivers follow the World's rotation.
h, w = 256, 512
lat = (np.pi / 2 - (np.arange(h) + 0.5) * np.pi / h)[:, None]
lon = ((np.arange(w) + 0.5) * 2 * np.pi / w - np.pi)[None, :]
directions = np.stack(np.broadcast_arrays(np.cos(lat) * np.sin(lon), np.sin(lat), -np.cos(lat) * np.cos(lon)), -1)
toward_sun = np.array([0.5, 0.6, -0.62]) / np.linalg.norm([0.5, 0.6, -0.62])
sky = np.full((h, w, 3), 0.1, np.float32)
sky[np.degrees(np.arccos(np.clip(directions @ toward_sun, -1.0, 1.0))) < 1.0] = 500.0
sunny = images.store_image("sunny sky", sky)
for _ in range(2):
    check(bpy.ops.ldr2hdr.set_world_lighting(image=sunny.name, extract_sun=True) == {"FINISHED"}, "extract sun")
lamps = [o for o in bpy.data.objects if o.type == "LIGHT" and "ldr2hdr_sun_azimuth" in o]
check(len(lamps) == 1 and lamps[0].name in scene.collection.objects, f"expected one sun lamp, found {len(lamps)}")
check(env.image.name == "sunny sky (no sun)", f"the world shows {env.image.name!r}, not the map without its sun")
check(lamps[0].data.energy > 0.1, f"sun lamp strength {lamps[0].data.energy}")
bpy.context.view_layer.update()
before = lamps[0].rotation_euler[2]
scene.world.node_tree.nodes["ldr2hdr Mapping"].inputs["Rotation"].default_value[2] += 1.0
bpy.context.view_layer.update()
check(abs(lamps[0].rotation_euler[2] - (before - 1.0)) < 1e-5, "the sun lamp does not follow the world rotation")
print(f"ok: ldr2hdr works on Blender {bpy.app.version_string}")
