"""The step operators refuse bad cases cleanly: no image node, inputs that are not photos, no
torch, a worker Python without torch, a failure while storing; nothing is left behind."""

import json
import subprocess

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from ldr2hdr.inference import pipeline  # noqa: E402
from ldr2hdr.nodes import compositor, groups  # noqa: E402
from .operator_helpers import assert_refused, compositor_with, load_ldr_image  # noqa: E402


# --------------------------------------------------------------------------- bad cases


def test_no_active_image_node(addon, ldr_scene):
    assert_refused("no compositor node tree")
    tree, node = compositor_with(load_ldr_image(ldr_scene))
    tree.nodes.active = None
    assert_refused("no active Image node.*image=")
    blur = tree.nodes.new("CompositorNodeBlur")
    tree.nodes.active = blur
    assert_refused("is not an Image node")
    tree.nodes.active = node
    node.image = None
    assert_refused("has no image")


def test_non_image_inputs(addon, ldr_scene, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert_refused("notes.png: not a readable image", filepath=str(text))
    assert_refused("no such file", filepath=str(tmp_path / "missing.jpg"))
    assert_refused("no image named 'nope'", image="nope")

    bogus = bpy.data.images.load(str(text))
    assert_refused("notes.png: not a readable image", image=bogus.name)

    # A datablock whose file has gone: Blender has no pixels for it.
    gone = tmp_path / "gone.png"
    gone.write_bytes(ldr_scene.path.read_bytes())
    vanished = bpy.data.images.load(str(gone))
    gone.unlink()
    assert_refused("gone.png.*has no pixels", image=vanished.name)

    hdr = bpy.data.images.new("already_hdr", 8, 4, float_buffer=True)
    assert_refused("already linear float", image=hdr.name)


def test_missing_torch_reports_the_fix(addon, ldr_scene, monkeypatch):
    from ldr2hdr.operators import jobs

    source = load_ldr_image(ldr_scene)
    monkeypatch.setattr(jobs, "torch_importable", lambda: False)
    assert_refused(r"torch is not installed.*Worker Python.*\.venv/bin/python", image=source.name)

    addon.python_path = "/nonexistent/python"
    assert_refused("worker Python does not exist", image=source.name)


def _python_without_torch():
    for candidate in ("/usr/bin/python3", "python3"):
        try:
            probe = subprocess.run([candidate, "-c", "import numpy, sys; print(sys.version_info[0])"],
                                   capture_output=True, text=True, timeout=30, check=False)
        except OSError:
            continue
        if probe.returncode != 0 or probe.stdout.strip() != "3":
            continue
        has_torch = subprocess.run([candidate, "-c", "import importlib.util as u; "
                                    "raise SystemExit(u.find_spec('torch') is None)"],
                                   capture_output=True, timeout=30, check=False)
        if has_torch.returncode == 1:
            return candidate
    return None


def test_worker_python_without_torch(addon, ldr_scene, tmp_path, monkeypatch, source_dir):
    from ldr2hdr.operators import jobs

    python = _python_without_torch()
    if python is None:
        pytest.skip("no Python with numpy but without torch on this machine")
    # The worker imports ldr2hdr from a folder named after the package, as an installed
    # extension does.
    (tmp_path / "ldr2hdr").symlink_to(source_dir, target_is_directory=True)
    monkeypatch.setattr(jobs, "PACKAGE_DIR", tmp_path / "ldr2hdr")
    import shutil

    addon.python_path = shutil.which(python) or python
    assert_refused(r"torch not installed for the worker Python.*Worker Python", image=load_ldr_image(ldr_scene).name)
    # The preferences' Check Worker button says the same before any run.
    with pytest.raises(RuntimeError, match=r"torch.* not installed for .*python.*Worker Python"):
        bpy.ops.ldr2hdr.check_worker()


def test_check_worker_in_process(addon, capsys):
    from ldr2hdr.inference import worker

    assert bpy.ops.ldr2hdr.check_worker() == {"FINISHED"}
    assert "inference runs in Blender's process: torch " in capsys.readouterr().out
    assert worker.main(["--check"]) == worker.EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["missing"] == [] and report["torch"]


def test_worker_protocol_round_trip(tmp_path, ldr_scene):
    from ldr2hdr.inference import worker

    request = worker.Request("linearize", {"crf": "srgb"}, pixels=ldr_scene.ldr)
    worker.write_request(tmp_path, request)
    assert json.loads((tmp_path / "request.json").read_text())["pixels"] == "input.npy"
    assert worker.main([str(tmp_path)]) == worker.EXIT_OK
    response = worker.read_response(tmp_path)
    expected = pipeline.run(ldr_scene.ldr, pipeline.Settings(crf="srgb"), steps="linearize")
    np.testing.assert_array_equal(response.pixels, expected.linear)
    assert response.inverse_crf.shape == (3, 1024)

    with pytest.raises(Exception, match="unknown settings: colour"):
        worker.run_request(worker.Request("linearize", {"colour": 1}, pixels=ldr_scene.ldr))
    bad = tmp_path / "bad"
    worker.write_request(bad, worker.Request("reconstruct", {}, filepath=str(tmp_path / "none.jpg")))
    assert worker.main([str(bad)]) == worker.EXIT_ERROR
    with pytest.raises(Exception, match="none.jpg"):
        worker.read_response(bad)


def test_failure_while_storing_leaves_nothing(addon, ldr_scene, monkeypatch):
    tree, _ = compositor_with(load_ldr_image(ldr_scene))

    def broken(node, image):
        raise RuntimeError("simulated failure while wiring the node")

    monkeypatch.setattr(groups, "set_result_image", broken)
    assert_refused("could not store the result: simulated failure")
    assert not any(groups.is_step_node(n) for n in tree.nodes)
