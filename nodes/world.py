"""World lighting from an equirectangular HDR: the node chain behind Set World Lighting.

    Texture Coordinate (Generated) -> Mapping (Z rotation) -> Environment Texture
        -> Background (strength) -> World Output

Built-in shader nodes only, so Cycles and EEVEE both render it. Our nodes carry fixed
names, so running the operator again updates them instead of adding more.
"""

import bpy

WORLD_NAME = "ldr2hdr World"
NODE_NAMES = {
    "coords": "ldr2hdr Coordinates",
    "mapping": "ldr2hdr Mapping",
    "environment": "ldr2hdr Environment",
    "background": "ldr2hdr Background",
    "output": "ldr2hdr World Output",
}


def _ensure_node(nodes, key, idname, location):
    node = nodes.get(NODE_NAMES[key])
    if node is not None and node.bl_idname != idname:
        nodes.remove(node)
        node = None
    if node is None:
        node = nodes.new(idname)
        node.name = NODE_NAMES[key]
        node.location = location
    return node


def ensure_world(scene):
    """The scene's world (a new "ldr2hdr World" when it has none), with nodes enabled."""
    world = scene.world
    if world is None:
        world = bpy.data.worlds.new(WORLD_NAME)
        scene.world = world
    if bpy.app.version < (5, 0, 0) and not world.use_nodes:
        # 5.0 always uses nodes (the flag is deprecated there); 4.x needs it switched on.
        world.use_nodes = True
    return world


def set_environment(scene, image, strength=1.0, rotation=0.0):
    """Light ``scene`` with ``image`` as an equirectangular environment.

    Args:
        scene: the scene whose world is set up (created when missing).
        image: a Blender image, linear float for real light levels.
        strength: Background strength (multiplies the radiance).
        rotation: rotation about the world Z axis, in radians.

    Returns:
        The world.
    """
    world = ensure_world(scene)
    tree = world.node_tree
    nodes, links = tree.nodes, tree.links
    coords = _ensure_node(nodes, "coords", "ShaderNodeTexCoord", (-900, 300))
    mapping = _ensure_node(nodes, "mapping", "ShaderNodeMapping", (-700, 300))
    env = _ensure_node(nodes, "environment", "ShaderNodeTexEnvironment", (-500, 300))
    background = _ensure_node(nodes, "background", "ShaderNodeBackground", (-200, 300))
    output = _ensure_node(nodes, "output", "ShaderNodeOutputWorld", (50, 300))

    mapping.vector_type = "POINT"
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, float(rotation))
    env.image = image
    env.projection = "EQUIRECTANGULAR"
    env.interpolation = "Linear"
    background.inputs["Strength"].default_value = float(strength)

    _link(links, coords.outputs["Generated"], mapping.inputs["Vector"])
    _link(links, mapping.outputs["Vector"], env.inputs["Vector"])
    _link(links, env.outputs["Color"], background.inputs["Color"])
    _link(links, background.outputs["Background"], output.inputs["Surface"])

    # Ours must be the output the renderers use; other World Output nodes stay but idle.
    for node in nodes:
        if node.bl_idname == "ShaderNodeOutputWorld":
            node.is_active_output = node == output
    output.target = "ALL"
    return world


def _link(links, from_socket, to_socket):
    if any(link.from_socket == from_socket for link in to_socket.links):
        return
    for link in list(to_socket.links):
        links.remove(link)
    links.new(from_socket, to_socket)


def environment_node(world):
    """Our Environment Texture node in ``world``, or None."""
    if world is None or world.node_tree is None:
        return None
    return world.node_tree.nodes.get(NODE_NAMES["environment"])
