"""Estimate CRF / Linearize / Restore Highlights / Reconstruct as compositor group nodes.

The compositor cannot run Python nodes (see docs BLENDER.md), so each step is a
``CompositorNodeCustomGroup``: a Python-defined *group* node whose inner tree holds only
built-in nodes. An inner Image node shows the float image the model baked; the
operators write that image and wire the group in place of the original Image node.
Parameters live on the group node; re-running the operator refreshes the image.

Inner tree of each node (one per node, named ``.ldr2hdr <step> <source>``)::

    Group Input "Image" (the source, for the record; Estimate CRF passes it through)
    Image node "Result"  ->  Group Output "Image"           (Linearize, Restore, Reconstruct)
    Group Input "Image"  ->  Group Output "Image"           (Estimate CRF)
    Image node "Result"  ->  Group Output "Inverse CRF"     (Estimate CRF: 1024x1 curve image)

No pixel math here: the images come from the operators.
"""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty

from .compositor import COMPOSITOR_TREE_TYPE, IMAGE_NODE_TYPE, output_socket

RESULT_NODE_NAME = "Result"
LIVE_CURVE_NODE_NAME = "Live Curve"

#: Kept in step with ``ldr2hdr.inference.pipeline.METHODS`` (a test checks it); importing
#: the pipeline here would import torch while Blender registers the add-on.
METHOD_ITEMS = (
    ("learned", "Learned", "The camera-curve network and the highlight network (needs their weights)"),
    ("classical", "Classical", "sRGB curve, dequantization and Kovaleski-Oliveira highlight expansion"),
)
DEFAULT_METHOD = "learned"  # = pipeline.Settings().method (a test checks it)
CRF_ITEMS = (
    ("auto", "Auto", "Let the method estimate or choose the camera curve"),
    ("srgb", "sRGB", "The standard sRGB curve most cameras and browsers declare"),
    ("gamma2.2", "Gamma 2.2", "A pure power-law curve"),
    ("linear", "Linear", "The pixel values are already linear"),
)
#: Kept in step with ``ldr2hdr.inference.pipeline.SCALE_MODES`` (a test checks it).
SCALE_ITEMS = (
    ("relative", "Relative", "The pipeline's own units: 1 is the camera's clip level"),
    ("exif", "Physical (EXIF)", "W m^-2 sr^-1 from the photo's exposure time, f-number and ISO (read from its file; "
                                "relative when it has none)"),
    ("match-photo", "Match Photo", "The Standard view shows the photo's mid-tones at their own brightness"),
)
PANORAMA_ITEMS = (
    ("auto", "Auto", "A 2:1 image is a 360 equirectangular panorama"),
    ("on", "On", "Treat the image as a 360 panorama (filters wrap around horizontally)"),
    ("off", "Off", "Treat the image as an ordinary photo"),
)

# step -> (node idname, label, operator idname, result-image suffix)
STEPS = {
    "estimate-crf": ("LDR2HDR_NodeEstimateCRF", "Estimate CRF", "ldr2hdr.estimate_crf", "crf"),
    "linearize": ("LDR2HDR_NodeLinearize", "Linearize", "ldr2hdr.linearize", "linear"),
    "restore": ("LDR2HDR_NodeRestoreHighlights", "Restore Highlights", "ldr2hdr.restore_highlights", "restored"),
    "reconstruct": ("LDR2HDR_NodeReconstruct", "Reconstruct HDR", "ldr2hdr.reconstruct", "hdr"),
}

PARAMETER_NAMES = ("method", "crf", "exposure", "scale", "panorama", "tile_size")


class _StepNode:
    """Shared parts of the four step nodes (a mixin: Blender registers the subclasses)."""

    step = ""

    method: EnumProperty(name="Method", items=METHOD_ITEMS, default=DEFAULT_METHOD)
    crf: EnumProperty(name="Camera Curve", items=CRF_ITEMS, default="auto")
    exposure: FloatProperty(name="Exposure", description="Scale the result by 2^exposure", default=0.0,
                            min=-32.0, max=32.0, soft_min=-10.0, soft_max=10.0, subtype="NONE", unit="NONE")
    scale: EnumProperty(name="Units", items=SCALE_ITEMS, default="relative")
    panorama: EnumProperty(name="Panorama", items=PANORAMA_ITEMS, default="auto")
    tile_size: IntProperty(name="Tile Size", default=512, min=64, max=8192, subtype="PIXEL")
    source_image: PointerProperty(name="Source", type=bpy.types.Image,
                                  description="The LDR image this node was computed from")
    live: BoolProperty(name="Live", default=False,
                       description="Linearize: apply the estimated curve live with a built-in RGB Curves "
                       "node instead of showing the baked image (no dequantization)")

    @classmethod
    def poll(cls, tree):
        return tree.bl_idname == COMPOSITOR_TREE_TYPE

    # No init(): a tree assigned while Blender adds the node keeps a stale extra user (so
    # it would outlive the node in the .blend); create_step_node assigns it afterwards.

    def copy(self, node):
        # A duplicated node gets its own inner tree so updating one never changes the other.
        if node.node_tree is not None:
            self.node_tree = node.node_tree.copy()

    def draw_buttons(self, context, layout):
        draw_node_buttons(self, layout)

    def draw_buttons_ext(self, context, layout):
        draw_node_buttons(self, layout, extended=True)

    def draw_label(self):
        return STEPS[self.step][1]


def draw_node_buttons(node, layout, extended=False):
    """The node's parameters and its Update button (sidebar: also tile size and source)."""
    layout.prop(node, "method", text="")
    layout.prop(node, "crf")
    if node.step != "estimate-crf":
        layout.prop(node, "exposure")
        layout.prop(node, "scale")
    layout.prop(node, "panorama")
    if node.step == "linearize":
        layout.label(text="Live curve" if node.live else "Baked", icon="NODE" if node.live else "IMAGE_DATA")
    row = layout.row()
    row.enabled = node.source_image is not None
    text = "Update" if result_image(node) is not None or node.live else "Compute"
    op = row.operator(STEPS[node.step][2], text=text, icon="FILE_REFRESH")
    op.node = node.name
    if extended:
        layout.prop(node, "tile_size")
        layout.prop(node, "source_image")


def _make_node_class(step):
    idname, label, _operator, _suffix = STEPS[step]
    return type(idname, (_StepNode, bpy.types.CompositorNodeCustomGroup), {
        "bl_idname": idname,
        "bl_label": label,
        "bl_description": f"{label}: the float result the ldr2hdr model baked",
        "bl_icon": "IMAGE_RGB",
        "bl_width_default": 200,
        "step": step,
        "__annotations__": dict(_StepNode.__annotations__),
    })


NODE_CLASSES = tuple(_make_node_class(step) for step in STEPS)
NODE_TYPES = {cls.step: cls.bl_idname for cls in NODE_CLASSES}


def build_inner_tree(step, name):
    """A new inner tree for ``step`` (see the module docstring); returns the node group."""
    tree = bpy.data.node_groups.new(f".ldr2hdr {STEPS[step][1]} {name}", COMPOSITOR_TREE_TYPE)
    tree.interface.new_socket(name="Image", in_out="INPUT", socket_type="NodeSocketColor")
    tree.interface.new_socket(name="Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    if step == "estimate-crf":
        tree.interface.new_socket(name="Inverse CRF", in_out="OUTPUT", socket_type="NodeSocketColor")
    group_in = tree.nodes.new("NodeGroupInput")
    group_in.location = (-300, 0)
    result = tree.nodes.new(IMAGE_NODE_TYPE)
    result.name = result.label = RESULT_NODE_NAME
    result.location = (-300, -200)
    group_out = tree.nodes.new("NodeGroupOutput")
    group_out.location = (200, 0)
    if step == "estimate-crf":
        tree.links.new(group_in.outputs["Image"], group_out.inputs["Image"])
        tree.links.new(result.outputs["Image"], group_out.inputs["Inverse CRF"])
    else:
        tree.links.new(result.outputs["Image"], group_out.inputs["Image"])
    return tree


def is_step_node(node):
    return getattr(node, "bl_idname", "") in NODE_TYPES.values()


def _result_node(node):
    tree = node.node_tree
    if tree is None:
        return None
    inner = tree.nodes.get(RESULT_NODE_NAME)
    if inner is None or inner.bl_idname != IMAGE_NODE_TYPE:
        return None
    return inner


def result_image(node):
    """The image a step node shows, or None."""
    inner = _result_node(node)
    return None if inner is None else inner.image


def set_result_image(node, image):
    """Point the node's inner Image node at ``image`` (rebuilding a damaged inner tree)."""
    inner = _result_node(node)
    if inner is None:
        node.node_tree = build_inner_tree(node.step, node.name)
        inner = _result_node(node)
    inner.image = image


def shown_by_other_nodes(tree, node, image):
    """Whether step nodes other than ``node`` in ``tree`` show ``image`` (e.g. a duplicate)."""
    return any(is_step_node(other) and other != node and result_image(other) == image for other in tree.nodes)


def find_step_node(tree, step, source_image):
    """The existing node of ``step`` computed from ``source_image`` in ``tree``, or None."""
    wanted = NODE_TYPES[step]
    for node in tree.nodes:
        if node.bl_idname == wanted and node.source_image == source_image:
            return node
    return None


def upstream_image_node(node):
    """The Image node linked into a step node's input, or None."""
    if not node.inputs or not node.inputs[0].is_linked:
        return None
    source = node.inputs[0].links[0].from_node
    return source if source.bl_idname == IMAGE_NODE_TYPE else None


def create_step_node(tree, step, source_node, replace_node=None):
    """Add a ``step`` node fed by ``source_node`` and wire it in place of ``replace_node``.

    ``replace_node`` (default: ``source_node``) gives up its outgoing links, except those
    into other step nodes, to the new node; with no such links the new node feeds the
    compositor output when that is free. Returns the new node.
    """
    replace_node = replace_node or source_node
    node = tree.nodes.new(NODE_TYPES[step])
    node.node_tree = build_inner_tree(step, node.name)
    node.location = (replace_node.location.x + replace_node.width + 60, replace_node.location.y)
    node.source_image = getattr(source_node, "image", None)
    if source_node is not None and source_node.outputs:
        tree.links.new(source_node.outputs[0], node.inputs[0])
    taken = [link for link in replace_node.outputs[0].links if not is_step_node(link.to_node)] \
        if replace_node.outputs else []
    targets = [link.to_socket for link in taken]
    for link in taken:
        tree.links.remove(link)
    for socket in targets:
        tree.links.new(node.outputs[0], socket)
    if not targets:
        out = output_socket(tree)
        if out is not None and not out.is_linked:
            tree.links.new(node.outputs[0], out)
    return node


def remove_step_node(tree, node):
    """Remove a step node and its inner tree, restoring the links it had taken over."""
    source = node.inputs[0].links[0].from_socket if node.inputs and node.inputs[0].is_linked else None
    targets = [link.to_socket for link in node.outputs[0].links] if node.outputs else []
    inner = node.node_tree
    tree.nodes.remove(node)
    if source is not None:
        for socket in targets:
            tree.links.new(source, socket)
    if inner is not None and inner.users == 0:
        bpy.data.node_groups.remove(inner)


def set_live_curves(node, points):
    """Show the node's input through a built-in RGB Curves node (live, no baked image).

    Args:
        node: a Linearize step node.
        points: three ``(K, 2)`` sequences of (input, output) pairs, increasing in input,
            one per R, G, B channel; the segments between them are straight.
    """
    tree = node.node_tree
    curve_node = tree.nodes.get(LIVE_CURVE_NODE_NAME)
    if curve_node is None:
        curve_node = tree.nodes.new("CompositorNodeCurveRGB")
        curve_node.name = curve_node.label = LIVE_CURVE_NODE_NAME
        curve_node.location = (-50, 0)
    mapping = curve_node.mapping
    mapping.use_clip = True
    # Curves 0-2 are R, G, B; curve 3 ("C") is applied to all channels and stays identity.
    for index, channel_points in enumerate(list(points) + [((0.0, 0.0), (1.0, 1.0))]):
        _set_curve_points(mapping.curves[index], channel_points)
    mapping.update()
    group_in = next(n for n in tree.nodes if n.bl_idname == "NodeGroupInput")
    group_out = next(n for n in tree.nodes if n.bl_idname == "NodeGroupOutput")
    tree.links.new(group_in.outputs["Image"], curve_node.inputs["Image"])
    tree.links.new(curve_node.outputs["Image"], group_out.inputs["Image"])
    node.live = True


def _set_curve_points(curve, points):
    points = [tuple(map(float, p)) for p in points]
    while len(curve.points) > 2:
        curve.points.remove(curve.points[1])
    curve.points[0].location = points[0]
    curve.points[1].location = points[-1]
    for x, y in points[1:-1]:
        curve.points.new(x, y)
    for point in curve.points:
        point.handle_type = "VECTOR"


def show_baked(node):
    """Route the baked result image to the node's output (undoes :func:`set_live_curves`)."""
    inner = _result_node(node)
    tree = node.node_tree
    group_out = next(n for n in tree.nodes if n.bl_idname == "NodeGroupOutput")
    tree.links.new(inner.outputs["Image"], group_out.inputs["Image"])
    node.live = False


def parameters(node):
    """The node's parameters as a dict (names of :data:`PARAMETER_NAMES`)."""
    return {name: getattr(node, name) for name in PARAMETER_NAMES}


CLASSES = NODE_CLASSES


def ensure_step_node(target, step):
    """The step node of ``target`` (created in place of its Image node when missing) with the
    target's parameters and source image applied. Returns ``(node, created_node_or_None)``."""
    node, created = target.node, None
    if node is None:
        node = created = create_step_node(target.tree, step, target.source_node, target.replace_node)
    try:
        for name, value in target.parameters.items():
            setattr(node, name, value)
        node.source_image = target.image
    except BaseException:
        if created is not None:  # nothing half-made is left behind
            remove_step_node(target.tree, created)
        raise
    return node, created
