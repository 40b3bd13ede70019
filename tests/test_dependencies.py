"""Every machine installs the same environment: exact pins, one lock, and nothing the code never imports."""

import ast
import re
from importlib import metadata

from conftest import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

# Runtime requirements the code uses without importing them by name, and why.
USED_INDIRECTLY = {
    "accelerate": "transformers places weights on devices with it (device_map)",
    "bitsandbytes": "imported as bitsandbytes inside the model layer",
    "huggingface-hub": "imported as huggingface_hub",
    "pillow": "imported as PIL",
    "scikit-image": "imported as skimage",
    "json-repair": "imported as json_repair",
    "markdown-it-py": "imported as markdown_it",
}


def requirements(name: str) -> list[Requirement]:
    lines = (ROOT / name).read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith(("#", "-r"))]


def lock() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = Version(specifier.version)
    return pins


def test_every_direct_dependency_is_pinned_exactly():
    for requirement in requirements("requirements.txt") + requirements("requirements-dev.txt"):
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", requirement


def test_the_lock_holds_every_direct_pin_and_no_cuda_wheels():
    locked = lock()
    for requirement in requirements("requirements.txt") + requirements("requirements-dev.txt"):
        (specifier,) = requirement.specifier
        pinned = locked[canonicalize_name(requirement.name)]
        assert pinned.public == Version(specifier.version).public, requirement
    assert locked["torch"].local == "cpu"
    assert not [name for name in locked if name.startswith("nvidia-") or name == "triton"]


def test_this_environment_is_the_lock():
    mismatched = {
        name: (str(version), metadata.version(name))
        for name, version in lock().items()
        if Version(metadata.version(name)) != version
    }
    assert mismatched == {}, (
        "reinstall from the lock: bash scripts/test.sh (or pip install -r requirements-lock.txt)"
    )


def imported_top_level_names() -> set[str]:
    paths = [ROOT / "app.py", *(ROOT / "app").rglob("*.py"), *(ROOT / "pipelines").rglob("*.py")]
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_every_runtime_requirement_is_imported_by_the_app():
    imported = {canonicalize_name(name) for name in imported_top_level_names()}
    unused = [
        requirement.name
        for requirement in requirements("requirements.txt")
        if canonicalize_name(requirement.name) not in imported and requirement.name not in USED_INDIRECTLY
    ]
    assert unused == []
    for name, why in USED_INDIRECTLY.items():
        module = re.search(r"imported as (\w+)", why)
        assert module is None or module.group(1) in imported_top_level_names(), name
