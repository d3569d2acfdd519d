"""``ldr2hdr.check_worker``: say where inference will run, or what to install."""

import bpy

from ..inference.errors import Ldr2HdrError
from . import jobs
from .base import addon_preferences


class LDR2HDR_OT_check_worker(bpy.types.Operator):
    """Check that the Python that runs the model has torch (starts the worker Python once)"""

    bl_idname = "ldr2hdr.check_worker"
    bl_label = "Check Worker"
    bl_options = {"REGISTER", "INTERNAL"}

    def execute(self, context):
        prefs = addon_preferences(context)
        python = "" if prefs is None or not prefs.python_path.strip() else bpy.path.abspath(prefs.python_path.strip())
        try:
            message = jobs.check_worker(python)
        except Ldr2HdrError as exc:
            self.report({"ERROR"}, f"ldr2hdr: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"ldr2hdr: {message}")
        return {"FINISHED"}
