"""What the four step operators share: properties -> request -> job -> image + node.

Each operator acts on one source:

* ``filepath="..."``: an image file, read by the worker exactly as the command line reads it;
* ``image="<datablock>"``: a Blender image;
* otherwise the active node of the compositor: an Image node, or one of our step nodes
  (whose source image is then re-used).

The result is a packed float image (``<source>_<suffix>``); in the compositor it is shown
by a step group node wired in place of the Image node. A re-run updates both.

In background mode (``blender -b``), and whenever a script calls the operator directly,
``execute()`` runs the model synchronously. Invoked from the UI it runs off the main thread
(see :mod:`.jobs`) and a modal timer polls it; Esc cancels. Nothing is added to the file
until the result is in, so a cancel or a failure leaves nothing behind.
"""

import importlib.util
import os
from dataclasses import dataclass, field

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from ..inference import worker
from ..inference.errors import Ldr2HdrError, UnsupportedImageError
from ..nodes import groups
from ..nodes.compositor import IMAGE_NODE_TYPE, active_tree
from . import images, jobs

DEVICE_NAMES = {"AUTO": "auto", "CPU": "cpu", "CUDA": "cuda"}
POLL_SECONDS = 0.1
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".exr", ".hdr", ".bmp", ".tga")

NO_SOURCE_HINT = ("select an Image node in the compositor, or pass image=\"<image name>\" or "
                  "filepath=\"<file>\"")


def _base_name(name):
    """``photo.jpg`` -> ``photo``: image datablocks are often named after their file."""
    stem, ext = os.path.splitext(name)
    return stem if stem and ext.lower() in IMAGE_EXTENSIONS else name


def addon_preferences(context):
    """Our AddonPreferences, or None when the add-on runs unregistered (never in practice)."""
    addon = context.preferences.addons.get(__package__.rpartition(".")[0])
    return None if addon is None else addon.preferences


@dataclass
class Target:
    """What a run reads and where its result goes."""

    step: str
    label: str
    source_key: str                 # identifies the source for re-runs: image name or file path
    display_name: str               # base of the result image name
    image: object = None            # source bpy Image (None for filepath runs)
    filepath: str | None = None     # file the worker reads
    tree: object = None             # compositor tree for node runs
    node: object = None             # existing step node to update
    source_node: object = None      # Image node feeding a new step node
    replace_node: object = None     # node whose outgoing links a new step node takes over
    parameters: dict = field(default_factory=dict)


class StepOperatorMixin:
    """Base of ``ldr2hdr.estimate_crf``, ``.linearize``, ``.restore_highlights``, ``.reconstruct``."""

    bl_options = {"REGISTER", "UNDO"}
    step = ""

    image: StringProperty(name="Image", description="Name of the image datablock to process "
                          "(default: the active Image node in the compositor)", default="")
    filepath: StringProperty(name="File", description="Image file to process instead of a datablock",
                             default="", subtype="FILE_PATH")
    node: StringProperty(name="Node", description="Compositor node to act on (default: the active node)",
                         default="", options={"HIDDEN", "SKIP_SAVE"})
    method: EnumProperty(name="Method", items=groups.METHOD_ITEMS, default=groups.DEFAULT_METHOD)
    crf: EnumProperty(name="Camera Curve", items=groups.CRF_ITEMS, default="auto")
    exposure: FloatProperty(name="Exposure", description="Scale the result by 2^exposure (stops)",
                            default=0.0, min=-32.0, max=32.0, soft_min=-10.0, soft_max=10.0)
    scale: EnumProperty(name="Units", items=groups.SCALE_ITEMS, default="relative",
                        description="Units of the result: relative, physical from the photo's EXIF, or matched to "
                                    "the photo's brightness")
    panorama: EnumProperty(name="Panorama", items=groups.PANORAMA_ITEMS, default="auto")
    tile_size: IntProperty(name="Tile Size", description="Tile edge for tiled inference "
                           "(default: from the preferences)", default=512, min=64, max=8192, subtype="PIXEL")

    # ------------------------------------------------------------------ entry points
    def execute(self, context):
        try:
            target = self.resolve(context)
            request = self.build_request(context, target)
            response = jobs.run_sync(request, self._python_path(context))
        except Ldr2HdrError as exc:
            self.report({"ERROR"}, f"{self.bl_label}: {exc}")
            return {"CANCELLED"}
        return self.apply(context, target, response)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            self.start_job(context)
        except Ldr2HdrError as exc:
            self.report({"ERROR"}, f"{self.bl_label}: {exc}")
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(POLL_SECONDS, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        self._show_progress(context)
        return {"RUNNING_MODAL"}

    def start_job(self, context):
        """Resolve the source and start the worker; ``modal`` polls it. Raises Ldr2HdrError."""
        self._timer = None
        self._target = self.resolve(context)
        request = self.build_request(context, self._target)
        backend, python = jobs.choose_backend(self._python_path(context))
        self._job = jobs.Job(request, backend, python).start()
        return self._job

    def modal(self, context, event):
        if event.type == "ESC":
            self.cancel(context)
            self.report({"WARNING"}, f"{self.bl_label}: cancelled")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = self._job.poll()
        if state == jobs.RUNNING:
            self._show_progress(context)
            return {"PASS_THROUGH"}
        job = self._job
        self._end_modal(context)
        if state == jobs.DONE:
            return self.apply(context, self._target, job.response)
        self.report({"ERROR"}, f"{self.bl_label}: {job.error}")
        return {"CANCELLED"}

    def cancel(self, context):
        """Blender calls this when the modal ends abnormally; Esc calls it too."""
        job = getattr(self, "_job", None)
        if job is not None:
            job.cancel()
        self._end_modal(context)

    # ------------------------------------------------------------------ steps of a run
    def resolve(self, context):
        """Find the source and the node/image to update. Raises Ldr2HdrError."""
        step, label = self.step, groups.STEPS[self.step][1]
        params = self._parameters(context, None)
        if self.filepath:
            path = os.path.normpath(os.path.abspath(bpy.path.abspath(self.filepath)))
            if not os.path.isfile(path):
                raise UnsupportedImageError("no such file", path)
            stem = os.path.splitext(os.path.basename(path))[0]
            return Target(step, label, path, stem, filepath=path, parameters=params)
        if self.image:
            image = images.named_image(self.image)
            return Target(step, label, image.name, _base_name(image.name), image=image, parameters=params)

        tree = active_tree(context)
        if tree is None:
            raise Ldr2HdrError(f"no compositor node tree: {NO_SOURCE_HINT}")
        node = tree.nodes.get(self.node) if self.node else tree.nodes.active
        if node is None:
            raise Ldr2HdrError(f"no active Image node: {NO_SOURCE_HINT}")
        if node.bl_idname == IMAGE_NODE_TYPE:
            source_node, image, replace = node, node.image, node
        elif groups.is_step_node(node):
            source_node, image, replace = groups.upstream_image_node(node), node.source_image, node
        else:
            raise Ldr2HdrError(f"the active node {node.name!r} is not an Image node: {NO_SOURCE_HINT}")
        if image is None:
            raise Ldr2HdrError(f"the node {node.name!r} has no image: open an image in it first")
        existing = node if groups.is_step_node(node) and node.step == step else groups.find_step_node(tree, step, image)
        return Target(step, label, image.name, _base_name(image.name), image=image, tree=tree, node=existing,
                      source_node=source_node, replace_node=replace,
                      parameters=self._parameters(context, existing))

    def build_request(self, context, target):
        """The worker request for ``target`` (reads the source pixels here, on the main thread)."""
        params = target.parameters
        prefs = addon_preferences(context)
        settings = {
            "method": params["method"],
            "crf": params["crf"],
            "panorama": params["panorama"],
            "exposure": float(params["exposure"]) if self.step != "estimate-crf" else 0.0,
            "scale": params["scale"] if self.step != "estimate-crf" else "relative",
            "tile_size": int(params["tile_size"]),
            "device": DEVICE_NAMES.get(getattr(prefs, "device", "AUTO"), "auto"),
        }
        weights_dir = getattr(prefs, "weights_dir", "").strip()
        if weights_dir:
            settings["weights_dir"] = bpy.path.abspath(weights_dir)
        if target.filepath is not None:
            return worker.Request(self._request_step(), settings, filepath=target.filepath)
        image = target.image
        if images.has_linear_pixels(image):
            raise UnsupportedImageError("is already linear float (HDR) data: there is nothing to reconstruct; "
                                        "use it directly, e.g. with Set World Lighting", image.name)
        path = images.file_on_disk(image)
        if path is not None and self._worker_reads_files(context):
            # Let the worker decode the file itself: the same pixels as the command line.
            return worker.Request(self._request_step(), settings, filepath=path)
        return worker.Request(self._request_step(), settings, pixels=images.image_pixels(image))

    def apply(self, context, target, response):
        """Store the result image and wire/update the node. Undoes its own changes on failure."""
        suffix = groups.STEPS[self.step][3]
        previous = None
        if target.node is not None:
            previous = groups.result_image(target.node)
        if previous is None:
            previous = images.find_result_image(self.step, target.source_key)
        if previous is not None and target.tree is not None and \
                groups.shown_by_other_nodes(target.tree, target.node, previous):
            # A duplicated node still shares its original's image: give it its own.
            previous = None
        if self.step == "estimate-crf":
            pixels, colorspace = images.curve_pixels(response.inverse_crf), images.DATA_COLORSPACE
        else:
            pixels, colorspace = response.pixels, images.LINEAR_COLORSPACE
        tags = {images.TAG_STEP: self.step, images.TAG_SOURCE: target.source_key,
                "ldr2hdr_crf_method": response.crf_method, "ldr2hdr_crf_confidence": response.crf_confidence}
        if response.metadata.get("sources"):
            tags["ldr2hdr_sources"] = str(response.metadata["sources"])  # JSON list, brightest first
        created_node = result = None
        # Script runs (no node) keep the image alive with a fake user so it is saved with the file.
        keep = target.tree is None or (previous is not None and previous.use_fake_user)
        try:
            result = images.store_image(f"{target.display_name}_{suffix}", pixels, colorspace=colorspace,
                                        previous=previous, tags=tags)
            result.use_fake_user = keep
            if target.tree is not None:
                node, created_node = groups.ensure_step_node(target, self.step)
                groups.set_result_image(node, result)
                node.node_tree.name = f".ldr2hdr {target.label} {target.display_name}"
                target.tree.nodes.active = node
        except (RuntimeError, TypeError, ValueError, ReferenceError) as exc:
            if created_node is not None:
                groups.remove_step_node(target.tree, created_node)
            if result is not None and previous is None:
                bpy.data.images.remove(result)
            self.report({"ERROR"}, f"{self.bl_label}: could not store the result: {exc}")
            return {"CANCELLED"}
        for line in response.log:
            self.report({"WARNING"}, f"{self.bl_label}: {line}")
        self.report({"INFO"}, self._summary(result, response))
        return {"FINISHED"}

    # ------------------------------------------------------------------ helpers
    def _request_step(self):
        return self.step

    def _summary(self, image, response):
        width, height = image.size[:]
        if self.step == "estimate-crf":
            return (f"{self.bl_label}: {response.crf_method} curve "
                    f"(confidence {response.crf_confidence:.2f}) -> {image.name}")
        peak = float(response.pixels.max()) if response.pixels is not None else 0.0
        return f"{self.bl_label}: {image.name} {width}x{height}, peak {peak:.3g}{_sources_summary(response)}"

    def _parameters(self, context, node):
        """Node parameters win unless the caller set the property explicitly."""
        prefs = addon_preferences(context)
        values = {}
        for name in groups.PARAMETER_NAMES:
            if node is not None and not self.properties.is_property_set(name):
                values[name] = getattr(node, name)
            elif name == "tile_size" and not self.properties.is_property_set(name) and prefs is not None:
                values[name] = prefs.tile_size
            else:
                values[name] = getattr(self, name)
        return values

    def _python_path(self, context):
        prefs = addon_preferences(context)
        if prefs is None or not prefs.python_path.strip():
            return ""
        return bpy.path.abspath(prefs.python_path.strip())

    def _worker_reads_files(self, context):
        # A worker process has OpenImageIO (it is an ldr2hdr environment); in-process it
        # depends on what Blender's Python can import.
        if self._python_path(context):
            return True
        return importlib.util.find_spec("OpenImageIO") is not None

    def _show_progress(self, context):
        job = self._job
        context.window_manager.progress_update(int(100 * job.progress))
        text = f"ldr2hdr {self.bl_label}: {job.message} ({job.elapsed:.0f} s) - Esc to cancel"
        if context.workspace is not None:
            context.workspace.status_text_set(text)

    def _end_modal(self, context):
        wm = context.window_manager
        timer = getattr(self, "_timer", None)
        if timer is not None:
            wm.event_timer_remove(timer)
            self._timer = None
            wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)


def _sources_summary(response) -> str:
    """``", 3 light sources; brightest: sun at azimuth 120, elevation 25 deg"`` (or "")."""
    import json

    try:
        found = json.loads(response.metadata.get("sources") or "[]")
    except (TypeError, ValueError):
        return ""
    if not found:
        return ""
    top = found[0]
    where = ""
    if top.get("elevation_deg") is not None:
        where = f" at azimuth {top['azimuth_deg']:.0f}, elevation {top['elevation_deg']:.0f} deg"
    return f", {len(found)} light source{'s' if len(found) > 1 else ''}; brightest: {top['class']}{where}"
