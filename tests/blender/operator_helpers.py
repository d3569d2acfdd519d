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


def diffuse_sphere_scene(scene, *, segments, samples, size, camera_distance, map_resolution, ortho_scale=None,
                         adaptive_sampling=None, albedo=0.8, keep=lambda obj: False):
    """``scene`` reduced to a white diffuse sphere (``albedo``, radius 1, smooth, ``segments``
    (u, v)) at the origin, seen by its camera from ``camera_distance`` along -Y (orthographic
    when ``ortho_scale`` is given), and Cycles set for small, repeatable CPU renders to 32-bit
    RGBA EXR: ``samples``, ``size`` x ``size`` px, no denoising, a transparent film, the World's
    importance map at ``map_resolution`` px. Objects other than the camera and those ``keep``
    accepts are removed; ``adaptive_sampling`` is set when given."""
    import math

    import bmesh

    from ldr2hdr.nodes import world as world_nodes

    for obj in list(scene.objects):
        if obj.type != "CAMERA" and not keep(obj):
            bpy.data.objects.remove(obj)
    mesh = bpy.data.meshes.new("sphere")
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=segments[0], v_segments=segments[1], radius=1.0)
    for face in bm.faces:
        face.smooth = True
    bm.to_mesh(mesh)
    bm.free()
    scene.collection.objects.link(bpy.data.objects.new("sphere", mesh))
    material = bpy.data.materials.new("diffuse")
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True
    nodes = material.node_tree.nodes
    for node in list(nodes):
        if node.bl_idname != "ShaderNodeOutputMaterial":
            nodes.remove(node)
    diffuse = nodes.new("ShaderNodeBsdfDiffuse")
    diffuse.inputs["Color"].default_value = (albedo, albedo, albedo, 1.0)
    output = next(n for n in nodes if n.bl_idname == "ShaderNodeOutputMaterial")
    material.node_tree.links.new(diffuse.outputs["BSDF"], output.inputs["Surface"])
    mesh.materials.append(material)

    camera = scene.camera
    if ortho_scale is not None:
        camera.data.type = "ORTHO"
        camera.data.ortho_scale = ortho_scale
    camera.location = (0.0, -camera_distance, 0.0)
    camera.rotation_euler = (math.pi / 2, 0.0, 0.0)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    if adaptive_sampling is not None:
        scene.cycles.use_adaptive_sampling = adaptive_sampling
    scene.cycles.use_denoising = False
    scene.cycles.seed = 1
    scene.render.threads_mode = "FIXED"
    scene.render.threads = 2
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = True  # the sphere only: the map itself is not compared
    scene.render.use_compositing = False
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    scene.render.image_settings.color_mode = "RGBA"
    world = world_nodes.ensure_world(scene)
    world.cycles.sampling_method = "MANUAL"
    world.cycles.sample_map_resolution = map_resolution
