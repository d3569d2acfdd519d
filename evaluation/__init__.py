"""ldr2hdr evaluation: the measuring stick behind ``ldr2hdr eval`` and training/. Never imports bpy.

``harness`` (synthesize LDR photos from HDR references, run methods, score, report),
``metrics`` (alignment, PU21, log errors, irradiance, clipped energy) and ``synth``
(camera curves, exposure, 8-bit codecs). Depends on ``ldr2hdr.inference``, never the
other way round except for the command line's ``eval`` and ``demo`` entry points.
Not shipped in the Blender extension zip.
"""
