"""Compositor node wiring: the "HDR" submenu of the node editor's Add menu.

The submenu is only offered in the compositor. It holds a placeholder until
the Estimate CRF / Linearize / Restore Highlights group nodes arrive.
"""

import bpy

COMPOSITOR_TREE_TYPE = "CompositorNodeTree"


class NODE_MT_ldr2hdr_add_hdr(bpy.types.Menu):
    bl_idname = "NODE_MT_ldr2hdr_add_hdr"
    bl_label = "HDR"

    @classmethod
    def poll(cls, context):
        return _is_compositor(context)

    def draw(self, context):
        self.layout.label(text="ldr2hdr operators arrive in a later release", icon="INFO")


def _is_compositor(context):
    space = context.space_data
    return space is not None and getattr(space, "tree_type", None) == COMPOSITOR_TREE_TYPE


def draw_add_menu(self, context):
    """Appended to ``NODE_MT_add``; adds the HDR submenu in the compositor only."""
    if not _is_compositor(context):
        return
    self.layout.separator()
    self.layout.menu(NODE_MT_ldr2hdr_add_hdr.bl_idname)


CLASSES = (NODE_MT_ldr2hdr_add_hdr,)


def register():
    registered = []
    try:
        for cls in CLASSES:
            bpy.utils.register_class(cls)
            registered.append(cls)
        bpy.types.NODE_MT_add.append(draw_add_menu)
    except BaseException:
        for cls in reversed(registered):
            bpy.utils.unregister_class(cls)
        raise


def unregister():
    bpy.types.NODE_MT_add.remove(draw_add_menu)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
