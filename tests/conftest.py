"""Shared pytest fixtures.

Real HDR test data comes from the studio lights inside the ``bpy`` wheel
(1024x512 equirectangular EXRs), located without importing bpy so the
inference tests stay Blender-free.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

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


@pytest.fixture
def tmp_out(tmp_path: Path) -> Path:
    """An empty output folder, separate from any inputs a test puts in tmp_path."""
    out = tmp_path / "out"
    out.mkdir()
    return out
