"""The extension on another Blender version (4.2-4.5 LTS), when such a bpy is at hand.

Set ``LDR2HDR_OTHER_BLENDER_PYTHON`` to a Python that has another bpy wheel installed
(e.g. a venv with ``pip install bpy==4.5.*``); the test runs ``other_blender_smoke.py``
with it, inference going through this project's Python as the worker process.
"""

import os
import subprocess
import sys

import pytest

OTHER_PYTHON = os.environ.get("LDR2HDR_OTHER_BLENDER_PYTHON", "")


@pytest.mark.skipif(not OTHER_PYTHON, reason="LDR2HDR_OTHER_BLENDER_PYTHON is not set")
def test_smoke_on_other_blender(tmp_path, source_dir):
    parent = tmp_path / "pkg"
    parent.mkdir()
    (parent / "ldr2hdr").symlink_to(source_dir, target_is_directory=True)
    done = subprocess.run(
        [OTHER_PYTHON, str(source_dir / "tests" / "blender" / "other_blender_smoke.py"),
         str(parent), sys.executable, str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "ok: ldr2hdr works on Blender" in done.stdout
    # What was checked, with timings (shown with pytest -s)
    print("\n".join(line for line in done.stdout.splitlines() if line.startswith(("check: ", "ok: "))))
