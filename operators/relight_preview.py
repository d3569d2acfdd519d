"""``ldr2hdr.relight_preview``: ``ldr2hdr relight`` inside Blender.

Renders, with Cycles on the CPU, the small scene of :mod:`..render.stage` (a white diffuse
sphere, a glossy metal sphere, a white ground plane) lit by the HDR map, and optionally by the
map without its sun plus the Sun lamp made from it and by a reference map, side by side at one
exposure, into the image "ldr2hdr relight preview" (8-bit display values, packed; replaced on
re-runs). The work is :func:`..render.relight.preview`, the command's own: it builds its scene
in a new Blender scene and deletes everything it made, so the user's scenes, World and render
settings are left as they were.

It runs synchronously (a few seconds per panel at the default size): the render needs the
main thread, since it builds and deletes datablocks.
"""

import time

import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty

from ..inference.errors import Ldr2HdrError
from ..inference.lighting import relight_command
from ..nodes import world
from . import extract_sun as sun_step
from . import images
from .set_world_lighting import active_node_image

STEP = "relight-preview"
PREVIEW_NAME = "ldr2hdr relight preview"
#: On the preview image: the lines the command prints (the sun's verdict, one per panel).
LOG = "ldr2hdr_relight_log"
DISPLAY_COLORSPACE = "sRGB"

NO_MAP_HINT = ("select an Image node (or a Reconstruct HDR node) in the compositor, run Set World Lighting, "
               "or pass image=\"<image name>\"")


def find_preview():
    """The preview image an earlier run made, or None."""
    for image in bpy.data.images:
        if image.get(images.TAG_STEP) == STEP:
            return image
    return None


def map_pixels(image, what="map"):
    """The pixels of ``image`` as a linear 2:1 map (float32 ``HxWx3``, top-down).

    Raises:
        Ldr2HdrError: an LDR image, no pixels, or not 2:1.
    """
    if not images.has_linear_pixels(image):
        raise Ldr2HdrError(f"{image.name} is an LDR image: the preview needs a linear HDR {what} "
                           "(run Reconstruct HDR first)")
    from ..render.relight import check_map

    return check_map(images.image_pixels(image), what, image.name)


def _find_sun(pixels, image, sources=None):
    try:
        return sun_step.extract_sun_from_pixels(pixels, sources)
    except Ldr2HdrError as exc:
        raise Ldr2HdrError(exc.reason, image.name) from None  # say which map


def _relight_module():
    # Imported on first use, so registering the add-on loads none of it.
    try:
        from ..render import relight
    except ImportError as exc:
        raise Ldr2HdrError(f"the relighting preview cannot be loaded in Blender's Python ({exc})") from None
    return relight


def _show_in_empty_image_editors(context, image):
    """Image Editors that show nothing show the preview (none is taken from another image)."""
    wm = context.window_manager
    for window in (wm.windows if wm is not None else ()):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR" and area.ui_type == "IMAGE_EDITOR" and area.spaces.active.image is None:
                area.spaces.active.image = image


class LDR2HDR_OT_relight_preview(bpy.types.Operator):
    """Render a diffuse and a glossy sphere on a white ground with Cycles, lit by the HDR map (and by the map
without its sun plus a Sun lamp, and by a reference map), into the image "ldr2hdr relight preview".
Source: image=, the active Image/HDR node in the compositor, or the World's environment image"""

    bl_idname = "ldr2hdr.relight_preview"
    bl_label = "Relight Preview"
    bl_options = {"REGISTER", "UNDO"}

    image: StringProperty(name="Image", description="Name of the HDR map (default: the active Image/HDR node's "
                          "image, else the World's environment image)", default="")
    node: StringProperty(name="Node", default="", options={"HIDDEN", "SKIP_SAVE"})
    extract_sun: BoolProperty(name="Extract Sun", description="Add a panel lit by the map without its sun plus "
                              "the Sun lamp made from it", default=True)
    reference: StringProperty(name="Reference", description="Name of a reference HDR map: adds a panel lit by it",
                              default="")
    size: IntProperty(name="Size", description="Width of each panel (height 3/4 of it)",
                      default=relight_command.DEFAULT_SIZE, min=16, max=2048, subtype="PIXEL")
    samples: IntProperty(name="Samples", description="Cycles samples per pixel",
                         default=relight_command.DEFAULT_SAMPLES, min=1, max=4096)
    denoise: BoolProperty(name="Denoise", description="Run Cycles' denoiser", default=False)

    def execute(self, context):
        start = time.perf_counter()
        try:
            relight = _relight_module()
            source, from_world = self._source_image(context)
            # the preview of the World's map shows what the scene gets: turned and scaled as the World
            rotation, strength = world.world_transform(context.scene.world) if from_world else (0.0, 1.0)
            hdr = map_pixels(source)
            reference = self._reference_image()
            ref_pixels = None if reference is None else map_pixels(reference, "reference map")
            found = _find_sun(hdr, source, sun_step.listed_sources(source))
            found_ref = None if reference is None else _find_sun(ref_pixels, reference)
            lines = []
            result = relight.preview(hdr, found, name=source.name, extract_sun=self.extract_sun,
                                     reference=ref_pixels, found_ref=found_ref,
                                     reference_name=getattr(reference, "name", "reference"), width=self.size,
                                     samples=self.samples, denoise=self.denoise, rotation=rotation,
                                     strength=strength, log=lines.append)
        except Ldr2HdrError as exc:
            self.report({"ERROR"}, f"{self.bl_label}: {exc}")
            return {"CANCELLED"}
        except (RuntimeError, TypeError) as exc:  # Blender refused to render (Cycles off, a render running)
            self.report({"ERROR"}, f"{self.bl_label}: could not render: {' '.join(str(exc).split())}")
            return {"CANCELLED"}
        try:
            image = images.store_image(PREVIEW_NAME, result.image, colorspace=DISPLAY_COLORSPACE,
                                       float_buffer=False, previous=find_preview(),
                                       tags={images.TAG_STEP: STEP, images.TAG_SOURCE: source.name,
                                             LOG: "\n".join(lines)})
        except (RuntimeError, TypeError, ValueError) as exc:
            self.report({"ERROR"}, f"{self.bl_label}: could not store the preview: {exc}")
            return {"CANCELLED"}
        _show_in_empty_image_editors(context, image)
        self.report({"INFO"}, f"{self.bl_label}: {self._summary(source, result, found)} in "
                              f"{time.perf_counter() - start:.1f} s -> {image.name!r}")
        return {"FINISHED"}

    def _summary(self, source, result, found):
        rendered = [p.label for p in result.panels if p.image is not None]
        height, width = result.image.shape[0], result.image.shape[1] // len(result.panels)
        text = (f"{source.name}: {', '.join(rendered)} rendered ({width}x{height} each, "
                f"{self.samples} samples)")
        if any(p.image is None for p in result.panels):
            text += f"; no map - sun + lamp panel: {found.reason}"
        return text

    def _source_image(self, context):
        """The map to preview, and whether it is the World's (then the World's turn and strength apply)."""
        if self.image:
            return images.named_image(self.image), False
        try:
            image = active_node_image(context, self.node)
        except Ldr2HdrError:
            if self.node:
                raise
            image = None  # e.g. a Render Layers node is active: the World's map is meant
        if image is not None:
            return image, False
        env = world.environment_node(context.scene.world if context.scene is not None else None)
        if env is None or env.image is None:
            raise Ldr2HdrError(f"no HDR map: {NO_MAP_HINT}")
        # Extract Sun leaves the World showing the map without its sun: preview the map itself.
        return sun_step.original_image(env.image), True

    def _reference_image(self):
        return images.named_image(self.reference) if self.reference else None
