"""The declared dependency ranges and the Docker image's pins agree, and every package
idgraph imports is declared."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REQUIREMENTS = [Requirement(r) for r in PROJECT["dependencies"]]


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def test_every_direct_dependency_has_an_upper_bound() -> None:
    for requirement in REQUIREMENTS:
        assert any(s.operator == "<" for s in requirement.specifier), requirement


def test_the_docker_constraints_pin_every_dependency_inside_its_range() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonical(name)] = version
    for requirement in REQUIREMENTS:
        if requirement.marker and not requirement.marker.evaluate():
            continue
        version = pins.get(canonical(requirement.name))
        assert version is not None, f"constraints.txt does not pin {requirement.name}"
        assert requirement.specifier.contains(version), f"{requirement.name}=={version}"


def test_every_imported_package_is_declared() -> None:
    declared = {canonical(r.name) for r in REQUIREMENTS}
    providers = packages_distributions()
    for path in (ROOT / "src" / "idgraph").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "idgraph":
                    continue
                dists = {canonical(d) for d in providers.get(top, [])}
                assert dists & declared, f"{path.name} imports {top}, not declared"
