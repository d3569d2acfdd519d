"""``ldr2hdr.set_world_lighting``: light the scene with an HDR panorama (Cycles and EEVEE)."""

import math

import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty

from ..inference.errors import Ldr2HdrError
from ..nodes import groups, world
from ..nodes.compositor import IMAGE_NODE_TYPE, active_tree
from . import extract_sun as sun_step
from . import images
from .base import NO_SOURCE_HINT


class LDR2HDR_OT_set_world_lighting(bpy.types.Operator):
    """Use an equirectangular HDR image as the World's environment light, with strength and rotation.
Source: image=, filepath=, or the active Image/HDR node in the compositor. With extract_sun, the map's
sun becomes a Sun lamp (see Extract Sun)"""

    bl_idname = "ldr2hdr.set_world_lighting"
    bl_label = "Set World Lighting"
    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", description="Name of the image datablock (default: the active node's)",
                          default="")
    filepath: StringProperty(name="File", description="Image file to load instead", default="",
                             subtype="FILE_PATH")
    node: StringProperty(name="Node", default="", options={"HIDDEN", "SKIP_SAVE"})
    strength: FloatProperty(name="Strength", description="Multiplies the environment's radiance",
                            default=1.0, min=0.0, soft_max=10.0)
    rotation: FloatProperty(name="Rotation", description="Rotation of the environment about the Z axis",
                            default=0.0, soft_min=-2 * math.pi, soft_max=2 * math.pi, subtype="ANGLE",
                            unit="ROTATION")
    extract_sun: BoolProperty(name="Extract Sun", description="Replace the map's sun by a Sun lamp (sharp "
                              "shadows, less noise); the World then shows the map without it", default=False)

    def execute(self, context):
        try:
            image = self._source_image(context)
        except Ldr2HdrError as exc:
            self.report({"ERROR"}, f"{self.bl_label}: {exc}")
            return {"CANCELLED"}
        if context.scene is None:
            self.report({"ERROR"}, f"{self.bl_label}: no scene")
            return {"CANCELLED"}
        measured = None
        if self.extract_sun:
            try:  # measured before anything changes, so a failure leaves the file as it was
                measured = sun_step.measure_sun(image)
            except Ldr2HdrError as exc:
                self.report({"ERROR"}, f"{self.bl_label}: {exc}")
                return {"CANCELLED"}
        scene_world = world.set_environment(context.scene, image, self.strength, self.rotation)
        if not images.has_linear_pixels(image):
            self.report({"WARNING"}, f"{self.bl_label}: {image.name} is an LDR image, so its light is clipped; "
                                     "run Reconstruct HDR first for real light levels")
        self.report({"INFO"}, f"{self.bl_label}: {scene_world.name} lit by {image.name}")
        if measured is not None:
            self._extract_sun(context.scene, *measured)
        elif world.sun_lamp_is_stale(context.scene):
            lamp = world.sun_lamp(context.scene)
            taken_from = lamp.get(world.SUN_MAP)
            self.report({"WARNING"}, f"{self.bl_label}: {lamp.name} still adds the sun taken out of "
                                     f"{taken_from.name if taken_from else 'another map'}; delete it, "
                                     "or run with Extract Sun")
        return {"FINISHED"}

    def _extract_sun(self, scene, source, extraction):
        if extraction.sun is None:
            # The lamp of an earlier map would add a sun this map does not have.
            stale = world.sun_lamp_is_stale(scene) and world.remove_sun_lamp(scene)
            note = "; removed the Sun lamp of the previous map" if stale else ""
            self.report({"WARNING"}, f"{self.bl_label}: {source.name}: {extraction.reason}{note}")
            return
        lamp = sun_step.apply_sun(scene, source, extraction)
        self.report({"INFO"}, f"{self.bl_label}: {sun_step.describe(extraction.sun, lamp)}")

    def _source_image(self, context):
        if self.filepath:
            return images.load_image_file(self.filepath)
        if self.image:
            return images.named_image(self.image)
        image = active_node_image(context, self.node)
        if image is None:
            raise Ldr2HdrError(f"no active Image node: {NO_SOURCE_HINT}")
        return image


def active_node_image(context, node_name=""):
    """The image of the compositor's active node (or of the node named ``node_name``): a step
    node's result or an Image node's image; None when there is no such node.

    Raises:
        Ldr2HdrError: the node is a step node without an HDR result, or not an Image node.
    """
    tree = active_tree(context)
    node = None
    if tree is not None:
        node = tree.nodes.get(node_name) if node_name else tree.nodes.active
    if node is None:
        return None
    if groups.is_step_node(node):
        image = groups.result_image(node)
        if image is None or node.step == "estimate-crf":
            raise Ldr2HdrError(f"the node {node.name!r} has no HDR result: run it first")
        return image
    if node.bl_idname == IMAGE_NODE_TYPE and node.image is not None:
        return node.image
    raise Ldr2HdrError(f"the active node {node.name!r} is not an Image node with an image: {NO_SOURCE_HINT}")
