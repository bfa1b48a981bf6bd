"""The house plan: cli → service → engine → providers → core → config, nothing pointing up, no cycle.

Every import of a Salvage module (at module level or inside a function) is parsed from the source;
an edge from a lower layer to a higher one, or a cycle between modules, fails with the offending
import named.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lowest first. A module belongs to the first layer whose prefix it matches.
LAYERS = (
    ("config", ("daemon.config", "daemon.paths", "daemon")),
    ("core", ("daemon.core",)),
    ("providers", ("providers",)),
    ("engine", ("daemon.engine",)),
    ("service", ("daemon.service",)),
    ("cli", ("daemon.cli",)),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    return best


def modules() -> dict[str, Path]:
    found = {}
    for package in ("daemon", "providers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """The Salvage modules ``name`` imports, with line numbers (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.append((target, node.lineno))
    return out


def test_every_module_has_a_layer() -> None:
    assert [m for m in modules() if layer_of(m) < 0] == []


def test_no_import_points_up() -> None:
    known = modules()
    upward = []
    for name, path in known.items():
        for target, line in imports_of(name, path, known):
            if layer_of(target) > layer_of(name) and target != "daemon":
                upward.append(f"{path.relative_to(ROOT)}:{line} {name} ({LAYERS[layer_of(name)][0]}) imports "
                              f"{target} ({LAYERS[layer_of(target)][0]})")
    assert upward == []


def test_no_import_cycle() -> None:
    known = modules()
    graph = {name: {t for t, _ in imports_of(name, path, known) if t != "daemon" and not name.startswith(t + ".")}
             for name, path in known.items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_the_core_imports_only_the_config() -> None:
    known = modules()
    for name, path in known.items():
        if layer_of(name) == 1:
            bad = [t for t, _ in imports_of(name, path, known) if layer_of(t) not in (0, 1)]
            assert bad == [], name


def test_every_module_logs_in_the_one_salvage_tree() -> None:
    """``logging.getLogger(f"salvage.{__name__}")`` everywhere: one tree, one level set by the CLI."""
    wanted = 'logging.getLogger(f"salvage.{__name__}")'
    stray = []
    for path in sorted([*(ROOT / "daemon").rglob("*.py"), *(ROOT / "providers").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "getLogger":
                text = ast.unparse(node).replace("'", '"')
                if text != wanted and not (path.name == "logs.py" and path.parent.name == "cli"):
                    stray.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text}")
    assert stray == []
