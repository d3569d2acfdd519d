"""Fixtures for tests that run inside Blender through the PyPI ``bpy`` wheel.

Blender reads its user-folder environment variables once, when bpy is first
imported, so they are pointed at a throw-away folder (:mod:`tests.blender_user`,
shared with ``tests/render``) before any test module imports bpy, to keep the
tests away from the real home directory.

Each test module starts with ``pytest.importorskip("bpy")``, so the folder is
skipped when bpy cannot be imported. That skip cannot live here: pytest turns a
skip raised while importing a conftest named on the command line (as in
``pytest tests/blender``) into a crash instead of a skip.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.blender_user import FOLDER as _USER_RESOURCES  # sets Blender's user-folder variables

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


# --------------------------------------------------------------------------- operator fixtures

#: Exposure (linear gain) applied to the studio light before making the LDR: its median
#: luminance lands at 0.18, so the sun and bright sky clip as in a typical photo.
LDR_MEDIAN = 0.18
LDR_SIZE = (128, 256)  # H, W: the 1024x512 studio light, 4x4 box-averaged


#: The lighting test's second, larger scene: 2x2 box-averaged, nearer the 1024-2048 px at which
#: the highlight network sees real panoramas (LDR_SIZE keeps the operator tests fast).
LIGHTING_LDR_SIZE = (256, 512)


def _make_ldr_scene(tmp_path_factory, size):
    from types import SimpleNamespace

    import numpy as np

    bpy = pytest.importorskip("bpy")
    from ldr2hdr.inference import crf, io

    folder = Path(bpy.utils.system_resource("DATAFILES", path="studiolights/world"))
    full = io.read_image(folder / "sunrise.exr").pixels
    h, w = size
    small = full.reshape(h, full.shape[0] // h, w, full.shape[1] // w, 3).mean(axis=(1, 3))
    luminance = small @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    hdr = (small * (LDR_MEDIAN / np.median(luminance))).astype(np.float32)
    ldr = (np.round(crf.linear_to_srgb(hdr) * 255.0) / 255.0).astype(np.float32)
    path = tmp_path_factory.mktemp("ldr") / "sunrise_ldr.png"
    io.write_png(path, ldr)
    return SimpleNamespace(hdr=hdr, ldr=ldr, path=path)


@pytest.fixture(scope="session")
def ldr_scene(tmp_path_factory):
    """An LDR panorama made from a real HDR: ``SimpleNamespace(hdr, ldr, path)``.

    ``hdr``: float32 ``128x256x3``, the sunrise studio light scaled so its median
    luminance is 0.18 (the ground truth, same scale as the LDR's linear values);
    ``ldr``: its sRGB encoding clipped to [0, 1] and quantized to 8 bits; ``path``: that LDR
    as a PNG file.
    """
    return _make_ldr_scene(tmp_path_factory, LDR_SIZE)


@pytest.fixture(scope="session")
def lighting_scene(tmp_path_factory):
    """The same scene as :func:`ldr_scene` at :data:`LIGHTING_LDR_SIZE` (256x512)."""
    return _make_ldr_scene(tmp_path_factory, LIGHTING_LDR_SIZE)


@pytest.fixture
def one_torch_thread():
    """Inference in tests uses one CPU thread (the machine is shared)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def addon(one_torch_thread):
    """The add-on enabled as Blender enables it; yields its preferences."""
    bpy = pytest.importorskip("bpy")
    import addon_utils

    def _raise(ex):
        raise ex

    addon_utils.enable("ldr2hdr", default_set=True, handle_error=_raise)
    try:
        yield bpy.context.preferences.addons["ldr2hdr"].preferences
    finally:
        addon_utils.disable("ldr2hdr", default_set=True, handle_error=_raise)
