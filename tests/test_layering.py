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
    forbidden = {
        "core": ("hubless.net", "hubless.store", "hubless.services", "hubless.cli", "click"),
        "net": ("hubless.store", "hubless.services", "hubless.cli", "click"),
        "store": ("hubless.net", "hubless.services", "hubless.cli", "click", "libtorrent"),
        "services": ("hubless.cli", "click"),
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
