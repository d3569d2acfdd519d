"""Fixtures for the Cycles renders of ``ldr2hdr.render`` (through the PyPI ``bpy`` wheel).

Blender reads its user-folder environment variables once, when bpy is first imported, so they
point at a throw-away folder here, before any test module imports bpy; the subprocesses that
``ldr2hdr relight`` starts inherit them. As in ``tests/blender/conftest.py``, each test module
starts with ``pytest.importorskip("bpy")`` (a skip raised while importing a conftest named on the
command line would crash pytest instead of skipping).
"""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

# When tests/blender ran first, bpy is imported already, with that folder's sandbox: keep its
# variables so the subprocesses use the same folders as this process.
if "bpy" not in sys.modules:
    _USER_RESOURCES = Path(tempfile.mkdtemp(prefix="ldr2hdr-blender-user-"))
    atexit.register(shutil.rmtree, _USER_RESOURCES, ignore_errors=True)
    os.environ["BLENDER_USER_RESOURCES"] = str(_USER_RESOURCES)
    os.environ["BLENDER_USER_CONFIG"] = str(_USER_RESOURCES / "config")
    os.environ["BLENDER_USER_SCRIPTS"] = str(_USER_RESOURCES / "scripts")
    os.environ["BLENDER_USER_DATAFILES"] = str(_USER_RESOURCES / "datafiles")
    os.environ["BLENDER_USER_EXTENSIONS"] = str(_USER_RESOURCES / "extensions")
