"""``ldr2hdr.restore_highlights``: bring back radiance in clipped regions."""

import bpy

from .base import StepOperatorMixin


class LDR2HDR_OT_restore_highlights(StepOperatorMixin, bpy.types.Operator):
    """Linearize the active Image node (or image=/filepath=) and restore its clipped highlights:
a linear float HDR image, values above 1 where the photo was clipped"""

    bl_idname = "ldr2hdr.restore_highlights"
    bl_label = "Restore Highlights"
    step = "restore"
