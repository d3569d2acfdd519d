"""Blender operators, one module per user action (none yet).

Operators stay thin: properties -> settings -> ``ldr2hdr.inference`` -> image/node.
Add each operator class to :data:`CLASSES` in registration order.
"""

import bpy

CLASSES = ()


def register():
    registered = []
    try:
        for cls in CLASSES:
            bpy.utils.register_class(cls)
            registered.append(cls)
    except BaseException:
        for cls in reversed(registered):
            bpy.utils.unregister_class(cls)
        raise


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
