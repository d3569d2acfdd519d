"""``ldr2hdr relight`` without Blender: the command line's side, which never imports bpy.

The renders themselves are tested in ``tests/render/test_relight.py`` (they need the bpy wheel);
these tests run everywhere, including where bpy is not installed.
"""

import argparse
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from ldr2hdr.inference import cli, io
from ldr2hdr.inference.lighting import relight_command

NO_BPY_LINE = ("ldr2hdr: error: relight needs Blender's Python module bpy (pip install bpy==5.0.1) "
               "or run it inside Blender")


def _parse(argv):
    parser = argparse.ArgumentParser()
    relight_command.add_arguments(parser)
    return parser.parse_args(argv)


def test_forwarded_arguments_parse_back_to_the_same_settings():
    for argv in (["m.exr", "-o", "p.png"],
                 ["-o", "p.png", "--reference", "r.exr", "--extract-sun", "--size", "80", "--samples", "8",
                  "--denoise", "--overwrite", "--rotation", "-37.5", "--strength", "0.3",
                  "--", "-map-named-like-a-flag.exr"]):
        args = _parse(argv)
        assert vars(_parse(relight_command.forward_arguments(args))) == vars(args)


@pytest.mark.parametrize("strength", ["0", "-1", "inf", "nan", "bright"])
def test_a_world_strength_that_is_not_positive_is_refused(strength, capsys):
    with pytest.raises(SystemExit):
        _parse(["m.exr", "-o", "p.png", "--strength", strength])
    assert "--strength" in capsys.readouterr().err


def test_without_bpy_the_command_says_what_it_needs(tmp_path, monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == "bpy" else real_find_spec(name, *a, **k))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("started")))
    io.write_exr(tmp_path / "map.exr", np.ones((8, 16, 3), np.float32))
    out = tmp_path / "preview.png"
    rc = cli.main(["relight", str(tmp_path / "map.exr"), "-o", str(out)])
    captured = capsys.readouterr()
    assert rc != 0
    assert captured.err == NO_BPY_LINE + "\n"
    assert not out.exists()


def test_the_render_module_without_bpy_prints_the_same_line(tmp_path):
    # A None entry in sys.modules makes "import bpy" fail even where the wheel is installed.
    child = ("import runpy, sys; sys.modules['bpy'] = None; "
             "runpy.run_module('ldr2hdr.render.relight', run_name='__main__')")
    out = tmp_path / "preview.png"
    result = subprocess.run([sys.executable, "-c", child, "map.exr", "-o", str(out)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert result.stderr == NO_BPY_LINE + "\n"
    assert not out.exists()
