"""One throw-away Blender user folder for the whole test session.

Blender reads its user-folder environment variables once, when bpy is first imported, so
they must point here before any test imports bpy, and every test folder that uses bpy
(``tests/blender``, ``tests/render``; their conftests import this module) must use the same
folder whichever runs first. Subprocesses (``ldr2hdr relight``) inherit the variables.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

FOLDER = Path(tempfile.mkdtemp(prefix="ldr2hdr-blender-user-"))
atexit.register(shutil.rmtree, FOLDER, ignore_errors=True)
# BLENDER_USER_RESOURCES alone covers 4.2+; the specific folders are set too so an older or
# newer Blender that only honours those still stays in the sandbox.
os.environ["BLENDER_USER_RESOURCES"] = str(FOLDER)
os.environ["BLENDER_USER_CONFIG"] = str(FOLDER / "config")
os.environ["BLENDER_USER_SCRIPTS"] = str(FOLDER / "scripts")
os.environ["BLENDER_USER_DATAFILES"] = str(FOLDER / "datafiles")
os.environ["BLENDER_USER_EXTENSIONS"] = str(FOLDER / "extensions")
