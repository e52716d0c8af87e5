"""Imports point down only (DESIGN.md layers): checked on the source, not by convention."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "registry"

# What the pure core may import: the standard library's pure parts, pynacl and msgpack.
CORE_ALLOWED = {
    "__future__",
    "base64",
    "binascii",
    "collections",
    "dataclasses",
    "hashlib",
    "re",
    "typing",
    "unicodedata",
    "nacl",
    "msgpack",
    "enum",
    "functools",
    "itertools",
}


def imports_of(path: Path) -> set[str]:
    """Absolute module names imported by `path`; relative imports resolved into hubless."""
    tree = ast.parse(path.read_text())
    if path.is_relative_to(PACKAGE):
        package = ["hubless", *path.relative_to(PACKAGE).parts[:-1]]
    else:  # cli/ is installed as hubless.cli
        package = ["hubless", *path.relative_to(ROOT).parts[:-1]]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
    return found


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py")) if folder else sorted(PACKAGE.glob("*.py"))


def test_core_is_pure() -> None:
    for path in modules("core"):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "hubless":
                assert name.startswith("hubless.core"), f"{path.name} imports {name}"
            else:
                assert top in CORE_ALLOWED, f"core module {path.name} imports {name}"


def test_only_the_network_layer_imports_libtorrent() -> None:
    for path in sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "cli").rglob("*.py")):
        if "net" in path.relative_to(ROOT).parts:
            continue
        assert "libtorrent" not in {n.split(".")[0] for n in imports_of(path)}, path


def test_lower_layers_never_import_higher_ones() -> None:
    above = ("hubless.services", "hubless.lab", "hubless.cli", "click")
    forbidden = {
        "core": ("hubless.net", "hubless.store", *above),
        "net": ("hubless.store", *above),
        "store": ("hubless.net", "libtorrent", *above),
        "services": ("hubless.lab", "hubless.cli", "click"),
        "lab": ("hubless.cli", "click"),
    }
    for layer, bad in forbidden.items():
        for path in modules(layer):
            for name in imports_of(path):
                assert not name.startswith(bad), f"{layer}/{path.name} imports {name}"


def test_the_shared_file_helpers_import_nothing_of_hubless() -> None:
    names = imports_of(PACKAGE / "files.py")
    assert not [n for n in names if n.startswith("hubless")], names


def test_importing_the_core_does_not_load_libtorrent() -> None:
    import subprocess

    code = "import hubless.core, sys; assert 'libtorrent' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# The network seam (STYLE.md §3): a use case sees only the contract. The facade that builds
# the real network, and nothing else in services, names libtorrent's implementation.
SERVICES_MAY_IMPORT_FROM_NET = {
    "client.py": {"hubless.net.contract", "hubless.net.session", "hubless.net.torrents"},
}


def test_services_see_only_the_network_contract() -> None:
    for path in modules("services"):
        allowed = SERVICES_MAY_IMPORT_FROM_NET.get(path.name, {"hubless.net.contract"})
        for name in imports_of(path):
            if name.startswith("hubless.net"):
                assert name in allowed, f"services/{path.name} imports {name}"


def module_graph() -> dict[str, set[str]]:
    """hubless module -> the hubless modules it imports, lazily or not."""
    files = {**{_module_name(p): p for p in PACKAGE.rglob("*.py")}}
    files.update({_module_name(p): p for p in (ROOT / "cli").rglob("*.py")})
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in files)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    edges.add(full if full in files else base)
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def _module_name(path: Path) -> str:
    if path.is_relative_to(PACKAGE):
        parts = ["hubless", *path.relative_to(PACKAGE).with_suffix("").parts]
    else:
        parts = ["hubless", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in `graph` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles() -> None:
    graph = module_graph()
    assert graph["hubless.services.client"] >= {"hubless.services.context"}  # edges are seen
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_can_fail() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
