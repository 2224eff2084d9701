"""Package structure: the import graph of ``firesmoke`` has no cycles; modules stay short.

Every module's AST is walked, imports inside functions included (a deferred import is
still a dependency), relative imports resolved. ``import a.b.c`` depends on ``a.b.c``;
``from a.b import c`` depends on ``a.b.c`` when that is a module, else on ``a.b``.
A package's ``__init__`` is not counted as a dependency of its submodules (Python runs it
first, but re-exports there do not make a design cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import firesmoke

ROOT = Path(firesmoke.__file__).parent
#: a module longer than this gets a warning (modules end where their concept ends)
WARN_LINES = 800
#: the floors of the house: a package imports only from lower floors (or itself)
FLOORS: dict[str, int] = {
    "_version": 0, "errors": 0,
    "bounds": 1, "dates": 1, "paths": 1, "grid": 1, "metrics": 1, "kernels": 1, "models": 1,
    "io": 2, "store": 2,
    "fetch": 3, "cube": 3, "synthetic": 3, "inference": 3,
    "burned": 4, "smoke": 4, "train": 4,
    "campaign": 5,
    "cli": 6,
    "firesmoke": 7, "__main__": 7,  # the public face and ``python -m firesmoke``
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def import_graph() -> dict[str, set[str]]:
    """Module -> the firesmoke modules it imports (anywhere in its body)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = (_resolve(name, path.name == "__init__.py", node.level, node.module)
                        if node.level else node.module or "")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:  # import of an attribute/submodule path
                    t = t.rpartition(".")[0]
                if t.startswith("firesmoke") and t != name and t != "firesmoke":
                    deps.add(t)
        graph[name] = deps
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w.startswith(v + ".") or v.startswith(w + "."):
                continue  # package <-> its own submodule (``__init__`` re-exports)
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_graph_sees_deferred_and_relative_imports():
    graph = import_graph()
    # firesmoke.cli.main imports the store inside a function (a deferred import)
    assert "firesmoke.store" in graph["firesmoke.cli.main"]
    assert "firesmoke.kernels.hotspots" in graph["firesmoke.cube.frp"]


def test_find_cycles_detects_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "firesmoke"


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert cycles == [], f"import cycles in firesmoke: {cycles}"


def test_every_package_has_a_floor():
    assert {_package(m) for m in _modules()} <= set(FLOORS)


def test_no_package_imports_a_higher_floor():
    upward = []
    for module, deps in import_graph().items():
        a = _package(module)
        for dep in deps:
            b = _package(dep)
            if a != b and FLOORS[b] >= FLOORS[a]:
                upward.append(f"{module} -> {dep}")
    assert upward == [], "imports that go up (or sideways) a floor:\n" + "\n".join(upward)


def test_long_modules_warn():
    import warnings

    for name, path in _modules().items():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > WARN_LINES:
            warnings.warn(f"{name} has {n} lines (> {WARN_LINES}): does it hold one concept?",
                          stacklevel=1)


# ---------------------------------------------------------------------------- deferred imports
#: the form of the reason an import of firesmoke's own modules inside a function gives
DEFERRED = "# deferred:"
#: function-level imports exempt from the rule (``path:function`` under firesmoke/, with a
#: comment saying until when). Empty: the io/viirs rewrite (merged before this test) left
#: no function-level imports; add an entry only for code another branch is rewriting.
DEFERRED_EXEMPT: set[str] = set()


def _is_own(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return bool(node.level) or (node.module or "").split(".")[0] == "firesmoke"
    return any(a.name.split(".")[0] == "firesmoke" for a in node.names)


def function_imports(path: Path) -> list[tuple[str, int, str]]:
    """``(function, line, text of its first line)`` of each import of a firesmoke module in
    a function or method body of ``path`` (at any depth; ``Class.method`` names)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    out: list[tuple[str, int, str]] = []

    def walk(node: ast.AST, scope: list[str], in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                walk(child, [*scope, child.name], True)
            elif isinstance(child, ast.ClassDef):
                walk(child, [*scope, child.name], in_function)
            elif isinstance(child, ast.Lambda):
                walk(child, [*scope, "<lambda>"], True)
            else:
                if (in_function and isinstance(child, ast.Import | ast.ImportFrom)
                        and _is_own(child)):
                    out.append((".".join(scope), child.lineno, lines[child.lineno - 1]))
                walk(child, scope, in_function)

    walk(ast.parse(text, filename=str(path)), [], False)
    return out


def test_function_imports_are_found():
    sample = ROOT / "cli" / "main.py"
    found = {fn for fn, _, _ in function_imports(sample)}
    assert {"_cmd_predict", "_cmd_train"} <= found
    assert "_Cluster.__enter__" not in found  # its dask_client import is at the top now


def test_firesmoke_imports_are_at_the_top_unless_a_reason_is_given():
    """Imports of firesmoke's own modules go at the top of a module. One inside a function
    says why on its first line, in one form: ``# deferred: <reason>`` (an import cost
    measured, e.g. ``torch (~1.4 s)``, ``keeps --help light``, or a cycle). The public
    face's lazy names (firesmoke/__init__.py) use importlib, not import statements."""
    bare, exempt_seen = [], set()
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for fn, line, text in function_imports(path):
            if DEFERRED in text:
                continue
            if f"{rel}:{fn}" in DEFERRED_EXEMPT:
                exempt_seen.add(f"{rel}:{fn}")
                continue
            bare.append(f"firesmoke/{rel}:{line} ({fn}): {text.strip()}")
    assert bare == [], ("imports of firesmoke modules inside functions without a "
                        f"'{DEFERRED} <reason>' comment (move them to the top?):\n"
                        + "\n".join(bare))
    stale = DEFERRED_EXEMPT - exempt_seen
    assert not stale, f"DEFERRED_EXEMPT entries with nothing left to exempt: {sorted(stale)}"
