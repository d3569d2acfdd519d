"""examples/batch_convert.py, the README's ``blender -b -P`` script, run in-process."""

import runpy
import shutil
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from ldr2hdr.inference import io  # noqa: E402
from ldr2hdr.operators import images  # noqa: E402


def test_batch_convert_writes_exrs_and_a_lit_scene(addon, ldr_scene, source_dir, tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(ldr_scene.path, photos / "pano.png")
    (photos / "broken.jpg").write_text("not a photo")
    (photos / "notes.txt").write_text("ignored: not a photo extension")
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["blender", "-b", "-P", "batch_convert.py", "--", str(photos), str(out)])

    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(source_dir / "examples" / "batch_convert.py"), run_name="__main__")
    assert exit_info.value.code == 1  # broken.jpg failed, the batch went on

    hdr = io.read_image(out / "pano.exr")
    assert hdr.is_hdr and hdr.pixels.shape == ldr_scene.ldr.shape
    # The EXR holds exactly the float image the operator made (32-bit, no view transform).
    np.testing.assert_array_equal(hdr.pixels, images.image_pixels(bpy.data.images["pano_hdr"]))
    clipped = ldr_scene.ldr.max(axis=-1) >= 1.0
    assert hdr.pixels[clipped].max(axis=-1).mean() > 1.5
    assert not (out / "broken.exr").exists()

    assert (out / "lit_scene.blend").is_file()
    env = bpy.context.scene.world.node_tree.nodes["ldr2hdr Environment"]
    assert env.image.name == "pano_hdr"
