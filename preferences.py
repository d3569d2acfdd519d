"""Add-on preferences: compute device, tile size, worker Python and weights folder.

Blender-only module (imports bpy); imported from ``register()``, never from
``ldr2hdr.inference``.
"""

import bpy

from .registration import register_classes, unregister_classes
from bpy.props import EnumProperty, IntProperty, StringProperty

DEVICE_ITEMS = (
    ("AUTO", "Auto", "Use a CUDA GPU when the worker Python has one, otherwise the CPU"),
    ("CPU", "CPU", "Always run the model on the CPU"),
    ("CUDA", "CUDA", "Run the model on an NVIDIA GPU; fail instead of falling back to the CPU"),
)


class LDR2HDR_AddonPreferences(bpy.types.AddonPreferences):
    # __package__ is "ldr2hdr" when enabled as a legacy add-on and
    # "bl_ext.<repo>.ldr2hdr" when installed as an extension; Blender looks the
    # preferences up by the module name, so it must not be hard-coded.
    bl_idname = __package__

    device: EnumProperty(
        name="Device",
        description="Where the highlight model runs",
        items=DEVICE_ITEMS,
        default="AUTO",
    )
    tile_size: IntProperty(
        name="Tile Size",
        description="Side of the square tiles the model processes at once, in pixels; "
        "smaller tiles need less memory",
        default=512,
        min=64,
        soft_max=2048,
        max=8192,
        subtype="PIXEL",
    )
    python_path: StringProperty(
        name="Worker Python",
        description="Python executable with torch installed (the .venv/bin/python of an ldr2hdr "
        "checkout); the model runs in a separate process started with it, which Esc can stop. "
        "Leave empty to run in Blender's own Python (needs torch installed there)",
        default="",
        subtype="FILE_PATH",
    )
    weights_dir: StringProperty(
        name="Weights Folder",
        description="Folder with replacement model weights (crf_net.safetensors, "
        "highlight_net.safetensors) and the manifest.json that lists their sha256; a file missing "
        "there comes from the weights that ship with the extension. Leave empty to use those",
        default="",
        subtype="DIR_PATH",
    )

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(self, "device")
        layout.prop(self, "tile_size")
        layout.prop(self, "python_path")
        layout.prop(self, "weights_dir")
        box = layout.box()
        col = box.column(align=True)
        col.label(text="Blender's Python has no torch. Set Worker Python to the .venv/bin/python", icon="INFO")
        col.label(text="of an ldr2hdr checkout after running ./setup.sh there (see the README).")
        box.operator("ldr2hdr.check_worker", icon="CHECKMARK")


def get_preferences(context=None):
    """Return this add-on's :class:`LDR2HDR_AddonPreferences` (Blender must have it enabled)."""
    context = context or bpy.context
    return context.preferences.addons[__package__].preferences


CLASSES = (LDR2HDR_AddonPreferences,)


def register():
    register_classes(CLASSES)


def unregister():
    unregister_classes(CLASSES)
