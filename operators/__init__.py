"""Blender operators, one module per user action.

Operators stay thin: properties -> settings -> ``ldr2hdr.inference`` (through the
worker in :mod:`.jobs`) -> image/node. :data:`CLASSES` is the registration order.
"""

import bpy

from ..registration import register_classes, unregister_classes

from .check_worker import LDR2HDR_OT_check_worker
from .estimate_crf import LDR2HDR_OT_estimate_crf
from .extract_sun import LDR2HDR_OT_extract_sun
from .linearize import LDR2HDR_OT_linearize
from .reconstruct import LDR2HDR_OT_reconstruct
from .relight_preview import LDR2HDR_OT_relight_preview
from .restore_highlights import LDR2HDR_OT_restore_highlights
from .set_world_lighting import LDR2HDR_OT_set_world_lighting

CLASSES = (
    LDR2HDR_OT_estimate_crf,
    LDR2HDR_OT_linearize,
    LDR2HDR_OT_restore_highlights,
    LDR2HDR_OT_reconstruct,
    LDR2HDR_OT_set_world_lighting,
    LDR2HDR_OT_extract_sun,
    LDR2HDR_OT_relight_preview,
    LDR2HDR_OT_check_worker,
)


def register():
    register_classes(CLASSES)


def unregister():
    unregister_classes(CLASSES)
