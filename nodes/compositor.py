"""The compositor's node tree and output across Blender versions.

Blender 5.0 replaced ``scene.node_tree`` + Composite node by ``scene.compositing_node_group``
(a node group datablock) + Group Output; 4.2-4.5 still use the old pair. Everything
version-dependent about the compositor lives here.
"""

import bpy

COMPOSITOR_TREE_TYPE = "CompositorNodeTree"
IMAGE_NODE_TYPE = "CompositorNodeImage"


def uses_node_group_output() -> bool:
    """True on Blender 5.0+, where the compositor ends in a Group Output."""
    return bpy.app.version >= (5, 0, 0)


def scene_tree(scene, create: bool = False):
    """The scene's compositor node tree; with ``create`` a minimal one is made when missing."""
    if uses_node_group_output():
        tree = scene.compositing_node_group
        if tree is None and create:
            tree = bpy.data.node_groups.new(f"{scene.name} Compositing", COMPOSITOR_TREE_TYPE)
            tree.interface.new_socket(name="Image", in_out="OUTPUT", socket_type="NodeSocketColor")
            output = tree.nodes.new("NodeGroupOutput")
            output.location = (400, 0)
            scene.compositing_node_group = tree
        return tree
    if create and not scene.use_nodes:
        scene.use_nodes = True
    tree = scene.node_tree
    if tree is not None and create and output_socket(tree) is None:
        composite = tree.nodes.new("CompositorNodeComposite")
        composite.location = (400, 0)
    return tree


def output_socket(tree):
    """The input socket whose image the compositor writes out, or None."""
    if uses_node_group_output():
        outputs = [n for n in tree.nodes if n.bl_idname == "NodeGroupOutput"]
        active = [n for n in outputs if getattr(n, "is_active_output", False)] or outputs
        if active and active[0].inputs and active[0].inputs[0].type != "CUSTOM":
            return active[0].inputs[0]
        return None
    for node in tree.nodes:
        if node.bl_idname == "CompositorNodeComposite":
            return node.inputs["Image"]
    return None


def editor_tree(context):
    """The compositor tree shown in the context's node editor, or None."""
    space = getattr(context, "space_data", None)
    if space is None or getattr(space, "type", "") != "NODE_EDITOR":
        return None
    if getattr(space, "tree_type", "") != COMPOSITOR_TREE_TYPE:
        return None
    return space.edit_tree


def active_tree(context):
    """The compositor tree the user works on: the node editor's, else the scene's."""
    tree = editor_tree(context)
    if tree is None and context.scene is not None:
        tree = scene_tree(context.scene)
    return tree
