"""Helpers shared by the operator tests: run a step operator, count what it added, read pixels."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from ldr2hdr.inference import io  # noqa: E402
from ldr2hdr.nodes import compositor  # noqa: E402
from ldr2hdr.operators import images  # noqa: E402

OPERATORS = {
    "estimate-crf": "estimate_crf",
    "linearize": "linearize",
    "restore": "restore_highlights",
    "reconstruct": "reconstruct",
}
HDR_STEPS = ("restore", "reconstruct")


def run_step(step, **kwargs):
    return getattr(bpy.ops.ldr2hdr, OPERATORS[step])(**kwargs)


def datablock_counts():
    tree = compositor.scene_tree(bpy.context.scene)
    nodes = 0 if tree is None else len(tree.nodes)
    # Render Result appears after the first render; it is Blender's, not ours.
    names = sorted(i.name for i in bpy.data.images if i.type != "RENDER_RESULT")
    return nodes, names, len(bpy.data.node_groups)


def compositor_with(image):
    tree = compositor.scene_tree(bpy.context.scene, create=True)
    node = tree.nodes.new("CompositorNodeImage")
    node.image = image
    tree.links.new(node.outputs["Image"], compositor.output_socket(tree))
    tree.nodes.active = node
    return tree, node


def read_pixels(image):
    return images.image_pixels(image)


def read_alpha(image):
    buffer = np.empty(image.size[0] * image.size[1] * 4, dtype=np.float32)
    image.pixels.foreach_get(buffer)
    return buffer.reshape(-1, 4)[:, 3]


def load_ldr_image(ldr_scene):
    return bpy.data.images.load(str(ldr_scene.path))


def clipped_mask(ldr):
    return ldr.max(axis=-1) >= 1.0


def assert_refused(match, **kwargs):
    before = datablock_counts()
    with pytest.raises(RuntimeError, match=match):
        bpy.ops.ldr2hdr.reconstruct(**kwargs)
    assert datablock_counts() == before


def render_composite(ldr_scene, tmp_path):
    """Render the scene's compositor to a 32-bit EXR (the only way to read a composite headless) and read it."""
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
