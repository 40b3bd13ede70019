"""Every sentence a person can be shown for an error comes from one catalogue, `pipelines/errors/messages.py`:
no typed error is worded at the place that raises it, no message in the catalogue is dead, and every template
names what it is filled with."""

from __future__ import annotations

import ast
import string
from pathlib import Path

from conftest import ROOT

CATALOGUE = ROOT / "pipelines" / "errors" / "messages.py"
CATALOGUE_MODULE = "pipelines.errors.messages"
# Besides the `ShowcaseError` family: what a failed tool call says, and Gradio's own toasts.
OTHER_WORDED_ERRORS = {"ToolError"}
GRADIO_TOASTS = {"Error", "Warning", "Info"}


def project_modules() -> list[Path]:
    paths = [path for package in ("app", "pipelines") for path in sorted((ROOT / package).rglob("*.py"))]
    return [path for path in paths if path != CATALOGUE]


def parsed() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8")) for path in project_modules()}


def typed_errors(trees: dict[Path, ast.Module]) -> set[str]:
    """`ShowcaseError` and every class that derives from it, found in the code itself."""
    known = {"ShowcaseError"}
    classes = [node for tree in trees.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    while True:
        found = {
            node.name
            for node in classes
            if any(isinstance(base, ast.Name) and base.id in known for base in node.bases)
        }
        if found <= known:
            return known
        known |= found


def catalogue() -> dict[str, str]:
    tree = ast.parse(CATALOGUE.read_text(encoding="utf-8"))
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }


def fields_of(template: str) -> list[str | None]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


def _is_worded_here(argument: ast.expr) -> bool:
    """A sentence written at the call: a string, an f-string, or a sum with one in it."""
    if isinstance(argument, ast.Constant):
        return isinstance(argument.value, str)
    if isinstance(argument, ast.JoinedStr):
        return True
    if isinstance(argument, ast.BinOp):
        return _is_worded_here(argument.left) or _is_worded_here(argument.right)
    return False


def _called_name(call: ast.Call) -> tuple[str | None, str | None]:
    """(the name called, the name of what it is called on), e.g. ("Warning", "gr") for `gr.Warning`."""
    if isinstance(call.func, ast.Name):
        return call.func.id, None
    if isinstance(call.func, ast.Attribute):
        owner = call.func.value.id if isinstance(call.func.value, ast.Name) else None
        return call.func.attr, owner
    return None, None


def test_no_error_is_worded_where_it_is_raised():
    trees = parsed()
    worded = typed_errors(trees) | OTHER_WORDED_ERRORS
    offending = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name, owner = _called_name(node)
            if not (name in worded or (owner == "gr" and name in GRADIO_TOASTS)):
                continue
            arguments = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "message")]
            if any(_is_worded_here(argument) for argument in arguments):
                offending.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}(...)")
    assert not offending, "word these in pipelines/errors/messages.py:\n" + "\n".join(offending)


def _catalogue_aliases(tree: ast.Module) -> set[str]:
    """The names a module gives the catalogue (`from pipelines.errors import messages [as ...]`)."""
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "pipelines.errors" and node.level == 0:
            aliases.update(alias.asname or alias.name for alias in node.names if alias.name == "messages")
        elif isinstance(node, ast.Import):
            aliases.update(
                alias.asname for alias in node.names if alias.name == CATALOGUE_MODULE and alias.asname
            )
    return aliases


def catalogue_uses() -> list[tuple[str, str, ast.Call | None]]:
    """Every `messages.NAME` in app/ and pipelines/: (where, NAME, the `.format(...)` call on it or None)."""
    uses = []
    for path, tree in parsed().items():
        aliases = _catalogue_aliases(tree)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                parent, grandparent = parents.get(node), parents.get(parents.get(node))
                formatted = (
                    isinstance(parent, ast.Attribute)
                    and parent.attr == "format"
                    and isinstance(grandparent, ast.Call)
                    and grandparent.func is parent
                )
                uses.append(
                    (f"{path.relative_to(ROOT)}:{node.lineno}", node.attr, grandparent if formatted else None)
                )
            elif isinstance(node, ast.ImportFrom) and node.module == CATALOGUE_MODULE:
                uses.extend(
                    (f"{path.relative_to(ROOT)}:{node.lineno}", alias.name, None) for alias in node.names
                )
    return uses


def test_every_message_in_the_catalogue_is_used():
    used = {name for _, name, _ in catalogue_uses()}
    unused = sorted(set(catalogue()) - used)
    assert not unused, f"messages nobody shows: {unused}"


def test_every_template_names_its_fields():
    unnamed = {
        name: text
        for name, text in catalogue().items()
        if any(not field or not field.isidentifier() for field in fields_of(text))
    }
    assert not unnamed, f"templates with positional or indexed fields: {unnamed}"


def test_every_use_fills_exactly_the_fields_of_its_template():
    messages = catalogue()
    wrong = []
    for where, name, call in catalogue_uses():
        assert name in messages, f"{where}: no message {name} in the catalogue"
        fields = set(fields_of(messages[name]))
        if call is None:
            if fields:
                wrong.append(f"{where}: {name} shown without filling {sorted(fields)}")
            continue
        given = {keyword.arg for keyword in call.keywords}
        if call.args or None in given or given != fields:
            wrong.append(f"{where}: {name} needs {sorted(fields)}, is given {sorted(map(str, given))}")
    assert not wrong, "\n".join(wrong)


def test_the_catalogue_is_never_shadowed():
    """Where chat messages are called `messages`, the catalogue is imported as `error_messages`."""
    shadowed = []
    for path, tree in parsed().items():
        if "messages" not in _catalogue_aliases(tree):
            continue
        for node in ast.walk(tree):
            rebinds = (
                isinstance(node, ast.Name) and node.id == "messages" and isinstance(node.ctx, ast.Store)
            ) or (isinstance(node, ast.arg) and node.arg == "messages")
            if rebinds:
                shadowed.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not shadowed, "`messages` is the catalogue here, and also:\n" + "\n".join(shadowed)
