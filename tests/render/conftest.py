"""Fixtures for the Cycles renders of ``ldr2hdr.render`` (through the PyPI ``bpy`` wheel).

Blender's user folders point at the session's throw-away folder (:mod:`tests.blender_user`,
shared with ``tests/blender``) before any test module imports bpy; the subprocesses that
``ldr2hdr relight`` starts inherit them. As in ``tests/blender/conftest.py``, each test module
starts with ``pytest.importorskip("bpy")`` (a skip raised while importing a conftest named on the
command line would crash pytest instead of skipping).
"""

import tests.blender_user  # noqa: F401 (sets Blender's user-folder variables)
