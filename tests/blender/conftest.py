"""Fixtures for tests that run inside Blender through the PyPI ``bpy`` wheel.

Blender reads its user-folder environment variables once, when bpy is first
imported, so they are pointed at a throw-away folder here, before any test
module imports bpy, to keep the tests away from the real home directory.

Each test module starts with ``pytest.importorskip("bpy")``, so the folder is
skipped when bpy cannot be imported. That skip cannot live here: pytest turns a
skip raised while importing a conftest named on the command line (as in
``pytest tests/blender``) into a crash instead of a skip.
"""

import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_USER_RESOURCES = Path(tempfile.mkdtemp(prefix="ldr2hdr-blender-user-"))
atexit.register(shutil.rmtree, _USER_RESOURCES, ignore_errors=True)
# BLENDER_USER_RESOURCES alone covers 4.2+; the specific folders are set too so
# an older or newer Blender that only honours those still stays in the sandbox.
os.environ["BLENDER_USER_RESOURCES"] = str(_USER_RESOURCES)
os.environ["BLENDER_USER_CONFIG"] = str(_USER_RESOURCES / "config")
os.environ["BLENDER_USER_SCRIPTS"] = str(_USER_RESOURCES / "scripts")
os.environ["BLENDER_USER_DATAFILES"] = str(_USER_RESOURCES / "datafiles")
os.environ["BLENDER_USER_EXTENSIONS"] = str(_USER_RESOURCES / "extensions")

_SOURCE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_blender_file():
    bpy = pytest.importorskip("bpy")
    bpy.ops.wm.read_homefile(app_template="")


@pytest.fixture(scope="session")
def source_dir() -> Path:
    """Checkout root: the extension package itself (holds blender_manifest.toml)."""
    assert (_SOURCE_DIR / "blender_manifest.toml").is_file()
    return _SOURCE_DIR


@pytest.fixture(scope="session")
def user_resources():
    """The temporary folder Blender uses as its user resource folder."""
    bpy = pytest.importorskip("bpy")
    assert Path(bpy.utils.resource_path("USER")) == _USER_RESOURCES
    return _USER_RESOURCES


def _bpy_package_dir() -> Path:
    # find_spec locates the wheel without importing it a second time.
    spec = importlib.util.find_spec("bpy")
    return Path(next(iter(spec.submodule_search_locations)))


def _single(paths, what):
    paths = sorted(paths)
    assert len(paths) == 1, f"expected exactly one {what}, found {paths}"
    return paths[0]


def _blender_ext_cli() -> Path:
    return _single(
        _bpy_package_dir().glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"),
        "blender_ext.py",
    )


@pytest.fixture(scope="session")
def valid_tags_file() -> Path:
    """Blender's list of tags accepted by extensions.blender.org."""
    return _single(
        _bpy_package_dir().glob("*/scripts/modules/_bpy_internal/extensions/tags.py"),
        "tags.py",
    )


@pytest.fixture(scope="session")
def blender_ext():
    """Run Blender's extension command line tool (validate/build) from the bpy wheel.

    The wheel has no ``blender`` binary, but the tool is a plain Python script.
    Returns ``run(*args) -> subprocess.CompletedProcess`` (never raises on failure).
    """
    cli = _blender_ext_cli()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(cli), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def built_package(tmp_path_factory, source_dir, blender_ext, valid_tags_file) -> Path:
    """The extension zip built from the checkout by Blender's own build command."""
    out_dir = tmp_path_factory.mktemp("dist")
    result = blender_ext(
        "build",
        "--source-dir", str(source_dir),
        "--output-dir", str(out_dir),
        "--valid-tags", str(valid_tags_file),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return _single(out_dir.glob("*.zip"), "built zip")
