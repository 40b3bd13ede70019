"""The layers hold in the code, imports inside functions included: no circles, and no reaching around the
model contract."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ("app", "pipelines")
# What tasks (pipelines/*.py and pipelines/tools, pipelines/media) may use of the model layer.
TASK_MAY_IMPORT = {"pipelines.model.contract", "pipelines.model.format.thinking", "pipelines.model.variants"}
# All the UI may reach of the model layer, through any chain of imports: the contract and its own helpers
# (`format/`), the catalogue and the backend factory, whose lazy imports are the one door to the runtimes.
APP_MAY_REACH = {
    "pipelines.model",
    "pipelines.model.contract",
    "pipelines.model.backends",
    "pipelines.model.variants",
    "pipelines.model.reference_configs",
    "pipelines.model.format",
}
APP_MAY_REACH_UNDER = ("pipelines.model.format.",)
# The factory: only its module-level imports count; what it imports inside functions is what it hands out.
DOORS = {"pipelines.model.backends"}
HEAVY = ("torch", "transformers", "bitsandbytes", "accelerate")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[module_name(path)] = path
    return found


def imports_of(path: Path, known: dict[str, Path], *, module_level_only: bool = False) -> set[str]:
    """Every project module `path` imports, at any depth (`from a import b` counts a.b when it is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name in known or name.split(".")[0] in HEAVY}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, known) for name, path in known.items()}


def test_no_import_circles():
    edges = {name: {target for target in targets if target in graph_nodes} for name, targets in GRAPH.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in edges[node]:
            if target == node or target in ("app", "pipelines") or node.startswith(target + "."):
                continue  # a package and its own modules
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import circle: " + " → ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_tasks_use_only_the_contract_thinking_and_variants_of_the_model_layer():
    for name, targets in GRAPH.items():
        if name.startswith("pipelines.model") or not name.startswith("pipelines"):
            continue
        reached = {t for t in targets if t.startswith("pipelines.model.") or t == "pipelines.model"}
        assert reached <= TASK_MAY_IMPORT, f"{name} imports {sorted(reached - TASK_MAY_IMPORT)}"
        assert not {t for t in targets if t.split(".")[0] in HEAVY}, f"{name} imports torch or transformers"


def app_import_closure() -> set[str]:
    """Every project module reachable from app.py and app/, through imports at any depth, past no door."""
    known = modules()
    entries = {name for name in known if name == "app" or name.startswith("app.")}
    reached = set(imports_of(ROOT / "app.py", known)) | entries
    pending = list(reached)
    while pending:
        name = pending.pop()
        if name not in known:
            continue
        for target in imports_of(known[name], known, module_level_only=name in DOORS):
            # `import a.b.c` imports the packages a and a.b too.
            for package in _packages_of(target):
                if package not in reached:
                    reached.add(package)
                    pending.append(package)
    return reached


def _packages_of(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: index + 1]) for index in range(len(parts))]


def test_the_ui_reaches_the_model_layer_only_through_the_contract_and_the_factory():
    closure = app_import_closure()
    model_layer = {name for name in closure if name.startswith("pipelines.model")}
    refused = {
        name for name in model_layer if name not in APP_MAY_REACH and not name.startswith(APP_MAY_REACH_UNDER)
    }
    assert not refused, f"app/ reaches {sorted(refused)}"
    assert {"pipelines.model.contract", "pipelines.model.backends"} <= model_layer, "the walk found the layer"
    heavy = sorted(name for name in closure if name.split(".")[0] in HEAVY)
    assert not heavy, f"app/ reaches {heavy}"


def test_pipelines_never_import_gradio():
    for name, path in modules().items():
        if name.startswith("pipelines"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [alias.name for alias in node.names] + [getattr(node, "module", "") or ""]
                    assert not any(n.split(".")[0] == "gradio" for n in names), f"{name} imports gradio"


def test_no_folder_of_pipelines_holds_more_than_14_modules():
    for folder in [ROOT / "pipelines", *(path for path in (ROOT / "pipelines").rglob("*") if path.is_dir())]:
        count = len(list(folder.glob("*.py")))
        assert count <= 14, f"{folder.relative_to(ROOT)} holds {count} modules: give them rooms"


def test_no_file_in_app_or_pipelines_is_over_400_lines():
    for path in modules().values():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines"


MAX_FUNCTION_LINES = 80


def test_no_function_in_app_or_pipelines_is_over_80_lines():
    too_long = []
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not too_long, "functions over 80 lines:\n" + "\n".join(sorted(too_long))


GRAPH = graph()
graph_nodes = set(GRAPH)
