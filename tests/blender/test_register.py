"""The add-on registers and unregisters cleanly, as a plain module and as an extension."""

import importlib
import sys
from types import SimpleNamespace

import pytest

bpy = pytest.importorskip("bpy")

import addon_utils  # noqa: E402  (Blender's module, importable only after bpy)

import ldr2hdr  # noqa: E402
from ldr2hdr import nodes, operators, preferences  # noqa: E402

EXTENSION_ID = "ldr2hdr"
MENU_IDNAME = "NODE_MT_ldr2hdr_add_hdr"


def _raise(ex):
    raise ex


def _add_menu_funcs():
    # Menu.append() swaps draw() for a wrapper holding the appended functions;
    # before any append there is no list, only the original draw().
    draw = bpy.types.NODE_MT_add.draw
    return list(getattr(draw, "_draw_funcs", [draw]))


def _ours_in_add_menu(package):
    return [f for f in _add_menu_funcs() if f.__module__.startswith(package)]


def _ui_snapshot():
    return set(dir(bpy.types)), _add_menu_funcs()


def _all_classes(package_modules):
    return [cls for module in package_modules for cls in module.CLASSES]


def test_importing_the_package_registers_nothing():
    before = _ui_snapshot()
    importlib.reload(ldr2hdr)
    assert _ui_snapshot() == before


def test_register_unregister_twice_leaves_nothing_behind():
    classes = _all_classes((preferences, operators, nodes))
    assert preferences.LDR2HDR_AddonPreferences in classes
    before = _ui_snapshot()
    for _ in range(2):
        ldr2hdr.register()
        assert all(cls.is_registered for cls in classes)
        assert hasattr(bpy.types, MENU_IDNAME)
        assert _ours_in_add_menu("ldr2hdr") == [nodes.draw_add_menu]

        ldr2hdr.unregister()
        assert not any(cls.is_registered for cls in classes)
        assert not hasattr(bpy.types, MENU_IDNAME)
        assert _ours_in_add_menu("ldr2hdr") == []
        assert _ui_snapshot() == before


def test_failed_register_rolls_back(monkeypatch):
    def broken_register():
        raise RuntimeError("nodes failed to register")

    monkeypatch.setattr(nodes, "register", broken_register)
    with pytest.raises(RuntimeError, match="nodes failed"):
        ldr2hdr.register()
    assert not preferences.LDR2HDR_AddonPreferences.is_registered
    monkeypatch.undo()

    # Nothing was left behind, so a normal register still works afterwards.
    ldr2hdr.register()
    ldr2hdr.unregister()


def test_preferences_idname_is_the_package_name():
    assert preferences.LDR2HDR_AddonPreferences.bl_idname == "ldr2hdr"


class _RecordingLayout:
    def __init__(self):
        self.menus = []

    def separator(self):
        pass

    def menu(self, idname):
        self.menus.append(idname)


@pytest.mark.parametrize(
    ("tree_type", "expected"),
    [
        ("CompositorNodeTree", [MENU_IDNAME]),
        ("ShaderNodeTree", []),
        ("GeometryNodeTree", []),
    ],
)
def test_hdr_submenu_only_in_compositor(tree_type, expected):
    menu = SimpleNamespace(layout=_RecordingLayout())
    context = SimpleNamespace(space_data=SimpleNamespace(tree_type=tree_type))
    nodes.draw_add_menu(menu, context)
    assert menu.layout.menus == expected
    assert nodes.NODE_MT_ldr2hdr_add_hdr.poll(context) == bool(expected)


def test_hdr_submenu_hidden_without_node_editor():
    context = SimpleNamespace(space_data=None)
    assert not nodes.NODE_MT_ldr2hdr_add_hdr.poll(context)


@pytest.fixture
def dev_repo(tmp_path, source_dir):
    """A user extension repository holding the checkout under the folder name ``ldr2hdr``.

    The checkout folder itself may have any name (e.g. "main"), but Blender
    imports an extension by its folder name, which must equal the manifest id.
    """
    repo_dir = tmp_path / "repo"
    repo_dir.mkdir()
    (repo_dir / EXTENSION_ID).symlink_to(source_dir, target_is_directory=True)
    repos = bpy.context.preferences.extensions.repos
    repo = repos.new(
        name="ldr2hdr dev", module="ldr2hdr_dev", custom_directory=str(repo_dir), source="USER"
    )
    yield repo
    repos.remove(repo)


def test_enable_as_extension_from_dev_repo(dev_repo, user_resources):
    module_name = f"bl_ext.{dev_repo.module}.{EXTENSION_ID}"
    before = _ui_snapshot()
    mod = addon_utils.enable(module_name, default_set=True, handle_error=_raise)
    try:
        assert mod is not None and mod.__name__ == module_name
        assert module_name in bpy.context.preferences.addons

        prefs = sys.modules[f"{module_name}.preferences"].get_preferences()
        assert type(prefs).bl_idname == module_name
        assert (prefs.device, prefs.tile_size) == ("AUTO", 512)
        assert (prefs.python_path, prefs.weights_dir) == ("", "")

        # Only an extension (not a legacy add-on) gets a writable per-extension folder.
        weights = bpy.utils.extension_path_user(mod.__package__, path="weights", create=True)
        assert weights.startswith(str(user_resources))
        assert EXTENSION_ID in weights
    finally:
        addon_utils.disable(module_name, default_set=True, handle_error=_raise)

    assert module_name not in bpy.context.preferences.addons
    assert _ours_in_add_menu(module_name) == []
    assert _ui_snapshot() == before


def _repo_index(module):
    for index, repo in enumerate(bpy.context.preferences.extensions.repos):
        if repo.module == module:
            return index
    raise LookupError(f"no extension repository {module!r}")


def test_install_built_package_and_uninstall(built_package, user_resources):
    module_name = f"bl_ext.user_default.{EXTENSION_ID}"
    before = _ui_snapshot()
    result = bpy.ops.extensions.package_install_files(
        filepath=str(built_package), repo="user_default", enable_on_install=True
    )
    assert result == {"FINISHED"}
    try:
        assert module_name in bpy.context.preferences.addons
        assert sys.modules[module_name].__file__.startswith(str(user_resources))
        assert hasattr(bpy.types, MENU_IDNAME)
        # The installed copy carries the bpy-free core too.
        importlib.import_module(f"{module_name}.inference.errors")
    finally:
        result = bpy.ops.extensions.package_uninstall(
            repo_index=_repo_index("user_default"), pkg_id=EXTENSION_ID
        )
    assert result == {"FINISHED"}
    assert module_name not in bpy.context.preferences.addons
    assert _ui_snapshot() == before


OPERATOR_IDS = ("estimate_crf", "linearize", "restore_highlights", "reconstruct", "set_world_lighting",
                "extract_sun", "relight_preview")


def _context_menu_funcs():
    draw = bpy.types.NODE_MT_context_menu.draw
    return list(getattr(draw, "_draw_funcs", [draw]))


def test_operators_nodes_and_context_menu_come_and_go_twice():
    for _ in range(2):
        ldr2hdr.register()
        assert all(name in dir(bpy.ops.ldr2hdr) for name in OPERATOR_IDS)
        tree = bpy.data.node_groups.new("probe", "CompositorNodeTree")
        for cls in nodes.groups.NODE_CLASSES:
            assert cls.is_registered
            assert tree.nodes.new(cls.bl_idname).poll(tree)
        bpy.data.node_groups.remove(tree)
        assert nodes.draw_context_menu in _context_menu_funcs()
        ldr2hdr.unregister()
        assert not any(name in dir(bpy.ops.ldr2hdr) for name in OPERATOR_IDS)
        assert not any(cls.is_registered for cls in nodes.groups.NODE_CLASSES)
        assert nodes.draw_context_menu not in _context_menu_funcs()


def test_menu_lists_every_operator():
    class _Layout:
        operator_context = "EXEC_DEFAULT"

        def __init__(self):
            self.operators = []

        def separator(self):
            pass

        def operator(self, idname, **_kwargs):
            self.operators.append(idname)

    menu = SimpleNamespace(layout=_Layout())
    nodes.NODE_MT_ldr2hdr_add_hdr.draw(menu, None)
    assert menu.layout.operators == [f"ldr2hdr.{name}" for name in OPERATOR_IDS]
    assert menu.layout.operator_context == "INVOKE_DEFAULT"  # menu clicks run off the main thread
