"""Shared pytest fixtures.

Real HDR test data comes from the studio lights inside the ``bpy`` wheel
(1024x512 equirectangular EXRs), located without importing bpy so the
inference tests stay Blender-free.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


def studio_light_path(name: str) -> Path:
    """Path of a bpy studio light EXR, e.g. ``studio_light_path("forest")``.

    Skips the test when the bpy wheel is not installed; fails when bpy is there
    but the light is not (a misspelt name must not silently skip).
    """
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the bpy wheel is not installed (needed for studio light EXRs)")
    root = Path(next(iter(spec.submodule_search_locations)))
    folders = sorted(root.glob("*/datafiles/studiolights/world"))
    if not folders:
        raise FileNotFoundError(f"no studiolights/world folder under {root}")
    path = folders[-1] / f"{name}.exr"
    if not path.is_file():
        available = sorted(p.stem for p in folders[-1].glob("*.exr"))
        raise FileNotFoundError(f"no studio light {name!r}; available: {available}")
    return path


@pytest.fixture
def studio_light():
    """The :func:`studio_light_path` function, as a fixture."""
    return studio_light_path


def hdr_test_image(height: int = 16, width: int = 24) -> np.ndarray:
    """Smooth positive image spanning 1e-4 .. 5e4 (below and far above 1)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.exp(np.log(1e-4) + (np.log(5e4) - np.log(1e-4)) * (x + y * width) / (height * width - 1))
    return np.stack([base, base * 0.5, base * 0.25], axis=-1).astype(np.float32)


@pytest.fixture(name="hdr_test_image")
def hdr_test_image_fixture():
    """The :func:`hdr_test_image` function, as a fixture."""
    return hdr_test_image


def write_with_oiio(path: Path, array: np.ndarray, attributes: dict | None = None, channelnames=None) -> Path:
    """Write ``array`` (its dtype decides the file's) with OpenImageIO, with header ``attributes``
    (EXIF such as ``Make`` or ``ExposureTime``, ``Compression``, ...). Straight alpha is kept."""
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(np.ascontiguousarray(array))
    spec = buf.specmod()
    # Our arrays hold straight (unassociated) alpha; without this OIIO would
    # divide colour by alpha when writing PNG/TIFF.
    spec.attribute("oiio:UnassociatedAlpha", 1)
    if channelnames is not None:
        spec.channelnames = tuple(channelnames)
    for name, value in (attributes or {}).items():
        spec.attribute(name, value)
    assert buf.write(str(path)), buf.geterror()
    return path


@pytest.fixture
def tmp_out(tmp_path: Path) -> Path:
    """An empty output folder, separate from any inputs a test puts in tmp_path."""
    out = tmp_path / "out"
    out.mkdir()
    return out
