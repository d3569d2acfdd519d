"""``ldr2hdr.estimate_crf``: estimate the camera response curve of an LDR image."""

import bpy

from .base import StepOperatorMixin


class LDR2HDR_OT_estimate_crf(StepOperatorMixin, bpy.types.Operator):
    """Estimate the camera response curve of the active Image node (or image=/filepath=).
The curve is stored as a 1024x1 Non-Color float image (x: pixel value, value: linear light)"""

    bl_idname = "ldr2hdr.estimate_crf"
    bl_label = "Estimate CRF"
    step = "estimate-crf"
