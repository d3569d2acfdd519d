"""ldr2hdr inference: everything that turns pixels into HDR. Never imports bpy.

Public entry points live in submodules: ``pipeline.run`` (the whole chain), ``crf``
(camera curves), ``highlights`` (restoring clipped highlights), ``io`` (OpenImageIO reading and
atomic writing) and ``cli`` (the command line). The measuring stick is ``ldr2hdr.evaluation``.
"""

__version__ = "0.1.0"
