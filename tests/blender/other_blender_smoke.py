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
print(f"ok: ldr2hdr works on Blender {bpy.app.version_string}")
