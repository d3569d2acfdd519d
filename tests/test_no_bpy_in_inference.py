"""``ldr2hdr`` and every module of ``ldr2hdr.inference`` and ``ldr2hdr.evaluation`` import without bpy.

Runs in a fresh interpreter: the Blender tests import bpy into the pytest
process, which would hide a stray ``import bpy`` here.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE_DIR = Path(__file__).resolve().parents[1]
BLENDER_MODULES = {"bpy", "_bpy", "bpy_types", "bpy_extras", "mathutils", "bmesh", "addon_utils"}
#: Packages that must work without Blender: the core and the measuring stick.
BPY_FREE_PACKAGES = ("inference", "evaluation")

_CHILD = r"""
import importlib, json, pkgutil, sys

# A None entry makes "import bpy" raise ImportError even though the wheel is installed.
for name in BLENDER_MODULES:
    sys.modules[name] = None
try:
    import bpy
except ImportError:
    pass
else:
    raise SystemExit("blocking bpy did not work")

import ldr2hdr
ui_modules = {"ldr2hdr.preferences", "ldr2hdr.operators", "ldr2hdr.nodes"} & set(sys.modules)
if ui_modules:
    raise SystemExit("importing ldr2hdr imported Blender modules: %s" % sorted(ui_modules))

imported = ["ldr2hdr"]
for package in BPY_FREE_PACKAGES:
    module = importlib.import_module("ldr2hdr." + package)
    imported.append(module.__name__)
    for info in pkgutil.walk_packages(module.__path__, prefix=module.__name__ + "."):
        if info.name.endswith(".__main__"):  # importing it would run the command line
            continue
        importlib.import_module(info.name)
        imported.append(info.name)
print(json.dumps({"imported": imported, "package_dir": ldr2hdr.__path__[0]}))
"""


def test_package_inference_and_evaluation_import_with_bpy_blocked(tmp_path):
    # cwd outside the checkout so "ldr2hdr" resolves through the installed package.
    result = subprocess.run(
        [sys.executable, "-c",
         f"BLENDER_MODULES = {sorted(BLENDER_MODULES)!r}\nBPY_FREE_PACKAGES = {BPY_FREE_PACKAGES!r}\n{_CHILD}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["package_dir"]).resolve() == SOURCE_DIR

    on_disk = {
        f"ldr2hdr.{package}." + ".".join(path.relative_to(SOURCE_DIR / package).with_suffix("").parts)
        for package in BPY_FREE_PACKAGES
        for path in (SOURCE_DIR / package).rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py") and "__pycache__" not in path.parts
    }
    assert on_disk <= set(report["imported"]), sorted(on_disk - set(report["imported"]))


def _imported_top_level_names(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


@pytest.mark.parametrize(
    "path",
    sorted(path for package in BPY_FREE_PACKAGES for path in (SOURCE_DIR / package).rglob("*.py")),
    ids=lambda p: p.relative_to(SOURCE_DIR).as_posix(),
)
def test_bpy_free_source_never_imports_blender_modules(path):
    # Also catches imports guarded by try/except or hidden in functions, which
    # the import test above cannot see.
    assert not set(_imported_top_level_names(path)) & BLENDER_MODULES
