"""Register Blender classes all-or-nothing (shared by preferences, operators and nodes)."""

import bpy


def register_classes(classes) -> None:
    """Register ``classes`` in order; if one fails, unregister the ones done and re-raise."""
    registered = []
    try:
        for cls in classes:
            bpy.utils.register_class(cls)
            registered.append(cls)
    except BaseException:
        for cls in reversed(registered):
            bpy.utils.unregister_class(cls)
        raise


def unregister_classes(classes) -> None:
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
