"""The project's modules import each other in one direction only: no import circles.

Builds the graph of every import between the package's own modules (at module level and
inside functions alike: a lazy import only hides a circle until someone moves it) from the
source, without importing anything. Tests, training scripts and examples are not modules of
the package and are left out.
"""

import ast
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parents[1]
PACKAGE = "ldr2hdr"
NOT_PACKAGE = {"tests", "training", "examples", "docs", "weights", "build", "dist", "runs", "out"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in SOURCE_DIR.rglob("*.py"):
        parts = path.relative_to(SOURCE_DIR).parts
        if parts[0] in NOT_PACKAGE or any(p.startswith(".") or p == "__pycache__" for p in parts):
            continue
        names = list(parts[:-1]) + ([] if path.name == "__init__.py" else [path.stem])
        found[".".join([PACKAGE, *names])] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names} & set(modules)
            targets |= submodules  # "from pkg import module" imports the module...
            if len(submodules) < len(node.names):
                targets.add(base)  # ...and "from pkg import name" runs pkg/__init__.py for the name
    return {t for t in targets if t in modules and t != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_package():
    modules = _modules()
    assert {"ldr2hdr.inference.pipeline", "ldr2hdr.inference.cli", "ldr2hdr.evaluation.harness"} <= set(modules)
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert "ldr2hdr.inference.pipeline" in graph["ldr2hdr.inference.batch"]


def test_no_import_circles_between_project_modules():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_circle_detection_works():
    # Guards the test above: a circle of three and a lone self-contained module.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
