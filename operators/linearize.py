"""``ldr2hdr.linearize``: undo the camera curve (and 8-bit banding) of an LDR image.

Baked (default): the worker runs the pipeline's linearize step and the node shows the
float result. Live (``live=True``, compositor only): the worker only estimates the curve,
and the node applies it with a built-in RGB Curves node, so it follows the source image
as it changes; it skips dequantization and exposure.
"""

import bpy
import numpy as np
from bpy.props import BoolProperty

from ..inference import crf
from ..inference.errors import Ldr2HdrError
from ..nodes import groups
from .base import StepOperatorMixin

#: Curve points per channel for live linearization: one every 1/32 of the code range.
LIVE_CURVE_POINTS = 33


# How the compositor's Image node turns stored code values into what it outputs, per
# colour space of the source image: the live curve has to undo this first.
SOURCE_DECODERS = {
    "sRGB": crf.srgb_to_linear,
    "Non-Color": lambda v: np.asarray(v, dtype=np.float64),
    "Linear Rec.709": lambda v: np.asarray(v, dtype=np.float64),
}


def live_curve_points(inverse_crf, colorspace, count=LIVE_CURVE_POINTS):
    """(input, output) points of RGB Curves that linearize an Image node's output.

    The Image node outputs ``decode(code)`` for stored code values in [0, 1]; the result
    must be ``inverse_crf(code)``. So the points are ``(decode(u), inverse_crf(u))`` for
    ``count`` evenly spaced code values ``u``.

    Args:
        inverse_crf: float ``(3, 1024)``, linear value for pixel value ``i / 1023``.
        colorspace: the source image's colour space name (a key of :data:`SOURCE_DECODERS`).

    Returns:
        float64 ``(3, count, 2)``.
    """
    decode = SOURCE_DECODERS.get(colorspace)
    if decode is None:
        raise Ldr2HdrError(f"live linearization needs an sRGB or Non-Color source image, not {colorspace!r}; "
                           "turn Live off to bake instead")
    curves = np.asarray(inverse_crf, dtype=np.float64)
    grid = np.linspace(0.0, 1.0, curves.shape[1])
    codes = np.linspace(0.0, 1.0, count)
    x = decode(codes)
    out = np.empty((3, count, 2))
    for channel in range(3):
        out[channel, :, 0] = x
        out[channel, :, 1] = np.interp(codes, grid, curves[min(channel, curves.shape[0] - 1)])
    return out


class LDR2HDR_OT_linearize(StepOperatorMixin, bpy.types.Operator):
    """Undo the camera curve of the active Image node (or image=/filepath=): a linear float image
with values up to 1 (clipped highlights stay clipped)"""

    bl_idname = "ldr2hdr.linearize"
    bl_label = "Linearize"
    step = "linearize"

    live: BoolProperty(name="Live", default=False,
                       description="Apply the estimated curve live with a built-in RGB Curves node "
                       "instead of baking an image (compositor only; no dequantization)")

    def _is_live(self, target):
        if self.properties.is_property_set("live"):
            return self.live
        return bool(target.node is not None and target.node.live)

    def resolve(self, context):
        target = super().resolve(context)
        if self._is_live(target) and target.tree is None:
            raise Ldr2HdrError("live linearization works on a compositor node; "
                               "for image= or filepath= runs leave Live off")
        self._live = self._is_live(target)
        return target

    def _request_step(self):
        return "estimate-crf" if getattr(self, "_live", False) else self.step

    def apply(self, context, target, response):
        if not getattr(self, "_live", False):
            result = super().apply(context, target, response)
            if result == {"FINISHED"} and target.tree is not None:
                groups.show_baked(target.tree.nodes.active)
            return result
        try:
            points = live_curve_points(response.inverse_crf, target.image.colorspace_settings.name)
        except Ldr2HdrError as exc:
            self.report({"ERROR"}, f"{self.bl_label}: {exc}")
            return {"CANCELLED"}
        created = None
        try:
            node, created = groups.ensure_step_node(target, self.step)
            groups.set_live_curves(node, points)
            target.tree.nodes.active = node
        except (RuntimeError, TypeError, ValueError, ReferenceError) as exc:
            if created is not None:
                groups.remove_step_node(target.tree, created)
            self.report({"ERROR"}, f"{self.bl_label}: could not build the live curve: {exc}")
            return {"CANCELLED"}
        if target.parameters.get("exposure"):
            self.report({"WARNING"}, f"{self.bl_label}: exposure is not applied in live mode")
        self.report({"INFO"}, f"{self.bl_label}: live {response.crf_method} curve on {node.name}")
        return {"FINISHED"}
