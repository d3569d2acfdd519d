"""The nodes in the editor: live linearization with built-in nodes, duplicated nodes, the
node's buttons."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from ldr2hdr.inference import pipeline  # noqa: E402
from ldr2hdr.nodes import compositor, groups  # noqa: E402
from .operator_helpers import compositor_with, load_ldr_image, read_pixels, render_composite  # noqa: E402


# --------------------------------------------------------------------------- live linearize


@pytest.mark.parametrize("curve", ["srgb", "gamma2.2"])
def test_live_linearize_applies_the_curve_with_builtin_nodes(addon, ldr_scene, tmp_path, curve):
    tree, _ = compositor_with(load_ldr_image(ldr_scene))
    images_before = len(bpy.data.images)
    assert bpy.ops.ldr2hdr.linearize(live=True, crf=curve) == {"FINISHED"}
    node = tree.nodes.active
    assert node.live and len(bpy.data.images) == images_before  # nothing baked
    assert node.node_tree.nodes[groups.LIVE_CURVE_NODE_NAME].bl_idname == "CompositorNodeCurveRGB"

    live = render_composite(ldr_scene, tmp_path)
    settings = pipeline.Settings(crf=curve, dequantize=False)
    expected = pipeline.run(ldr_scene.ldr, settings, steps="linearize").linear
    # 33 straight segments, evaluated through Blender's 256-entry curve table.
    # (sRGB and gamma 2.2 differ by up to 8e-3: skipping the curve would fail this.)
    np.testing.assert_allclose(live, expected, atol=1.5e-3)
    assert np.abs(live - expected).mean() < 2e-4

    # Switching Live off bakes into the same node.
    assert bpy.ops.ldr2hdr.linearize(node=node.name, live=False) == {"FINISHED"}
    assert not node.live and groups.result_image(node) is not None
    assert len([n for n in tree.nodes if groups.is_step_node(n)]) == 1


def test_live_linearize_needs_a_node(addon, ldr_scene):
    with pytest.raises(RuntimeError, match="live linearization works on a compositor node"):
        bpy.ops.ldr2hdr.linearize(filepath=str(ldr_scene.path), live=True)


def _node_editor_override(tree):
    window = bpy.context.window_manager.windows[0]
    area = window.screen.areas[0]
    area.ui_type = "CompositorNodeTree"
    area.spaces.active.node_tree = tree
    region = next(r for r in area.regions if r.type == "WINDOW")
    return bpy.context.temp_override(window=window, area=area, region=region)


def test_duplicated_node_gets_its_own_tree_and_image(addon, ldr_scene):
    tree, _ = compositor_with(load_ldr_image(ldr_scene))
    assert bpy.ops.ldr2hdr.reconstruct() == {"FINISHED"}
    original = tree.nodes.active
    original_pixels = read_pixels(groups.result_image(original))
    for node in tree.nodes:
        node.select = node == original
    with _node_editor_override(tree):
        assert bpy.ops.node.duplicate() == {"FINISHED"}
        # In the node editor the operators act on the editor's tree and active node.
        duplicate = tree.nodes.active
        assert duplicate != original and duplicate.node_tree != original.node_tree
        duplicate.exposure = 2.0
        assert bpy.ops.ldr2hdr.reconstruct() == {"FINISHED"}

    np.testing.assert_array_equal(read_pixels(groups.result_image(original)), original_pixels)
    assert groups.result_image(duplicate) != groups.result_image(original)
    np.testing.assert_allclose(read_pixels(groups.result_image(duplicate)), 4.0 * original_pixels, rtol=1e-6)

    # Deleting a node lets its inner tree go (no orphans saved with the file).
    inner_name = duplicate.node_tree.name
    groups.remove_step_node(tree, duplicate)
    assert inner_name not in bpy.data.node_groups


class _RecordingLayout:
    """Stands in for a UILayout: records what a draw function shows."""

    def __init__(self):
        self.props, self.operators, self.labels = [], [], []
        self.enabled = True

    def prop(self, data, name, **_kwargs):
        assert hasattr(data, name), name
        self.props.append(name)

    def label(self, text="", **_kwargs):
        self.labels.append(text)

    def row(self, **_kwargs):
        return self

    def operator(self, idname, **_kwargs):
        self.operators.append(idname)
        from types import SimpleNamespace

        return SimpleNamespace()


def test_node_buttons_show_parameters_and_update(addon, ldr_scene):
    tree, _ = compositor_with(load_ldr_image(ldr_scene))
    assert bpy.ops.ldr2hdr.linearize() == {"FINISHED"}
    node = tree.nodes.active
    layout = _RecordingLayout()
    # The plain Python function: Blender's draw_buttons wrapper accepts only a real UILayout.
    groups.draw_node_buttons(node, layout)
    assert {"method", "crf", "exposure", "panorama"} <= set(layout.props)
    assert layout.operators == ["ldr2hdr.linearize"] and layout.enabled
    assert "Baked" in layout.labels
    groups.draw_node_buttons(node, layout, extended=True)
    assert "tile_size" in layout.props and "source_image" in layout.props
    assert node.draw_label() == "Linearize"
