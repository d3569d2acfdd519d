"""``ldr2hdr.reconstruct``: all three steps (estimate curve, linearize, restore highlights)."""

import bpy

from .base import StepOperatorMixin


class LDR2HDR_OT_reconstruct(StepOperatorMixin, bpy.types.Operator):
    """Turn the active Image node (or image=/filepath=) into a linear HDR image: estimate the
camera curve, linearize, restore clipped highlights"""

    bl_idname = "ldr2hdr.reconstruct"
    bl_label = "Reconstruct HDR"
    step = "reconstruct"
