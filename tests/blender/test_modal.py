"""The UI path of the step operators, driven headless.

Modal operators cannot be invoked in background mode, so these tests play Blender's
part: they start the job as ``invoke`` does (``start_job``), then feed ``modal`` the
TIMER and ESC events Blender would send.
"""

import os
import sys
import time
from types import SimpleNamespace

import pytest

bpy = pytest.importorskip("bpy")

from ldr2hdr.nodes import compositor, groups  # noqa: E402
from ldr2hdr.operators import base, jobs  # noqa: E402

TIMER, ESC = SimpleNamespace(type="TIMER"), SimpleNamespace(type="ESC")


class _UIOperator(base.StepOperatorMixin):
    """A step operator instance outside Blender's operator machinery."""

    bl_label = "Reconstruct HDR"

    def __init__(self, step="reconstruct", **props):
        self.step = step
        values = dict(image="", filepath="", node="", method="classical", crf="auto", exposure=0.0,
                      scale="relative", panorama="auto", tile_size=512)
        values.update(props)
        for name, value in values.items():
            setattr(self, name, value)
        self.properties = SimpleNamespace(is_property_set=lambda name: name in props)
        self.reports = []

    def report(self, kinds, message):
        self.reports.append((set(kinds), message))


def _compositor_with(path):
    tree = compositor.scene_tree(bpy.context.scene, create=True)
    node = tree.nodes.new("CompositorNodeImage")
    node.image = bpy.data.images.load(str(path))
    tree.links.new(node.outputs["Image"], compositor.output_socket(tree))
    tree.nodes.active = node
    return tree


def _state():
    tree = compositor.scene_tree(bpy.context.scene)
    return (sorted(n.name for n in tree.nodes) if tree else [], sorted(i.name for i in bpy.data.images),
            len(bpy.data.node_groups))


def _drive(op, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = op.modal(bpy.context, TIMER)
        if result != {"PASS_THROUGH"}:
            return result
        time.sleep(0.02)
    raise TimeoutError("the modal operator never finished")


def test_modal_thread_run_adds_the_node_when_done(addon, ldr_scene):
    tree = _compositor_with(ldr_scene.path)
    op = _UIOperator()
    job = op.start_job(bpy.context)
    assert job.backend == "thread"
    assert _drive(op) == {"FINISHED"}
    node = tree.nodes.active
    assert groups.is_step_node(node) and node.step == "reconstruct"
    assert groups.result_image(node).is_float
    assert any("peak" in message for _, message in op.reports)


def test_esc_kills_the_worker_process_and_leaves_nothing(addon, ldr_scene):
    _compositor_with(ldr_scene.path)
    addon.python_path = sys.executable
    before = _state()
    op = _UIOperator()
    job = op.start_job(bpy.context)
    assert job.backend == "process"
    job_dir = job.job_dir
    assert op.modal(bpy.context, TIMER) == {"PASS_THROUGH"}  # still importing torch
    assert op.modal(bpy.context, ESC) == {"CANCELLED"}
    assert job.state == jobs.CANCELLED
    assert job._process.poll() is not None  # killed, not left running
    assert job_dir is not None and not os.path.exists(job_dir)
    assert ({"WARNING"}, "Reconstruct HDR: cancelled") in op.reports
    assert _state() == before


def test_cancel_discards_a_thread_result(addon, ldr_scene):
    _compositor_with(ldr_scene.path)
    before = _state()
    op = _UIOperator()
    job = op.start_job(bpy.context)
    op.cancel(bpy.context)  # what Blender calls when the modal is aborted
    job._thread.join(timeout=60)
    assert job.poll() == jobs.CANCELLED and job.response is None
    assert _state() == before


def test_a_cancelled_thread_stops_at_its_next_progress_report(ldr_scene):
    from ldr2hdr.inference import worker

    request = worker.Request("reconstruct", {"tile_size": 64}, pixels=ldr_scene.ldr)
    job = jobs.Job(request, backend="thread")
    reports = []
    original = job._set_progress

    def cancel_at_first_tile(fraction, message):
        reports.append(message)
        if message == "restoring highlights":
            job.cancel()
        original(fraction, message)

    job._set_progress = cancel_at_first_tile
    job.start()
    job._thread.join(timeout=120)
    assert not job._thread.is_alive()
    assert reports.count("restoring highlights") == 1  # no tile ran after the cancel
    assert job.poll() == jobs.CANCELLED and job.response is None and job.error is None


def test_modal_failure_reports_and_leaves_nothing(addon, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    before = _state()
    op = _UIOperator(filepath=str(text))
    op.start_job(bpy.context)
    assert _drive(op) == {"CANCELLED"}
    assert op.reports and "notes.jpg: not a readable image" in op.reports[-1][1]
    assert op.reports[-1][0] == {"ERROR"}
    assert _state() == before
