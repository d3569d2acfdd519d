"""ldr2hdr: turn one LDR photo (often a 360 panorama) into a linear HDR image.

This folder is two things at once: the Blender extension (module name
``ldr2hdr``, or ``bl_ext.<repo>.ldr2hdr`` when installed as an extension) and
the plain Python package whose ``ldr2hdr.inference`` runs without Blender.
So nothing here imports bpy at module level: the Blender modules are imported
only inside :func:`register` / :func:`unregister`.
"""

import importlib

# Registration order; unregister walks it backwards. Preferences come first so
# operators and nodes can read them while registering.
_UI_MODULE_NAMES = ("preferences", "operators", "nodes")


def _ui_modules():
    return [importlib.import_module(f".{name}", __name__) for name in _UI_MODULE_NAMES]


def register():
    registered = []
    try:
        for module in _ui_modules():
            module.register()
            registered.append(module)
    except BaseException:
        # Undo the modules that did register so a failed enable leaves no
        # classes behind, then let Blender report the original error.
        for module in reversed(registered):
            module.unregister()
        raise


def unregister():
    for module in reversed(_ui_modules()):
        module.unregister()
