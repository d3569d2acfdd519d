"""Compositor and world node wiring: the step group nodes and the "HDR" menus.

The "HDR" submenu appears in the node editor's Add menu and context menu, in the
compositor only. Its entries run the operators on the active Image node (a step node
is only meaningful once the model has baked its image, so the menu never adds an
empty one); the last three light the World with it, replace the map's sun by a lamp and
render a small test scene lit by the map (Relight Preview).
"""

import bpy

from . import groups
from .compositor import COMPOSITOR_TREE_TYPE

MENU_ENTRIES = (
    ("ldr2hdr.estimate_crf", "Estimate CRF", "FCURVE"),
    ("ldr2hdr.linearize", "Linearize", "IMAGE_RGB"),
    ("ldr2hdr.restore_highlights", "Restore Highlights", "LIGHT_SUN"),
    ("ldr2hdr.reconstruct", "Reconstruct HDR (all three)", "IMAGE_RGB_ALPHA"),
    ("ldr2hdr.set_world_lighting", "Set World Lighting", "WORLD"),
    ("ldr2hdr.extract_sun", "Extract Sun", "OUTLINER_OB_LIGHT"),
    ("ldr2hdr.relight_preview", "Relight Preview", "SHADING_RENDERED"),
)
#: The entries from here on act on the World, not on the active node: a separator sets them apart.
FIRST_WORLD_ENTRY = "ldr2hdr.set_world_lighting"


class NODE_MT_ldr2hdr_add_hdr(bpy.types.Menu):
    bl_idname = "NODE_MT_ldr2hdr_add_hdr"
    bl_label = "HDR"

    @classmethod
    def poll(cls, context):
        return _is_compositor(context)

    def draw(self, context):
        layout = self.layout
        layout.operator_context = "INVOKE_DEFAULT"
        for idname, text, icon in MENU_ENTRIES:
            if idname == FIRST_WORLD_ENTRY:
                layout.separator()
            layout.operator(idname, text=text, icon=icon)


def _is_compositor(context):
    space = context.space_data
    return space is not None and getattr(space, "tree_type", None) == COMPOSITOR_TREE_TYPE


def draw_add_menu(self, context):
    """Appended to ``NODE_MT_add``; adds the HDR submenu in the compositor only."""
    if not _is_compositor(context):
        return
    self.layout.separator()
    self.layout.menu(NODE_MT_ldr2hdr_add_hdr.bl_idname)


def draw_context_menu(self, context):
    """Appended to ``NODE_MT_context_menu``; the same HDR submenu."""
    if not _is_compositor(context):
        return
    self.layout.separator()
    self.layout.menu(NODE_MT_ldr2hdr_add_hdr.bl_idname)


CLASSES = groups.CLASSES + (NODE_MT_ldr2hdr_add_hdr,)

_MENU_HOOKS = (("NODE_MT_add", draw_add_menu), ("NODE_MT_context_menu", draw_context_menu))


def register():
    registered = []
    hooked = []
    try:
        for cls in CLASSES:
            bpy.utils.register_class(cls)
            registered.append(cls)
        for menu_name, func in _MENU_HOOKS:
            getattr(bpy.types, menu_name).append(func)
            hooked.append((menu_name, func))
    except BaseException:
        for menu_name, func in reversed(hooked):
            getattr(bpy.types, menu_name).remove(func)
        for cls in reversed(registered):
            bpy.utils.unregister_class(cls)
        raise


def unregister():
    for menu_name, func in reversed(_MENU_HOOKS):
        getattr(bpy.types, menu_name).remove(func)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
