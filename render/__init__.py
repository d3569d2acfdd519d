"""Renders with Blender (Cycles) that show what an HDR map does to a scene.

``relight`` builds a small fixed scene (a white diffuse sphere, a glossy metal sphere and a
white ground plane, seen from a fixed camera) lit by an equirectangular map and/or a Sun lamp,
renders it with Cycles on the CPU and returns float32 ``HxWx3`` linear images; run as
``python -m ldr2hdr.render.relight`` it is the worker behind ``ldr2hdr relight``. ``stage``
holds the scene's layout and everything measured on its images (object masks, the diffuse
sphere's mean, the width of a shadow's edge, the tone map and the panels) with numpy only.

This package is the Blender side: ``relight`` imports bpy, ``inference`` never imports this
package (the command line starts ``relight`` in a subprocess instead).
"""
