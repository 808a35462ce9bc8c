"""The six packages: versions in lockstep, who may depend on and import whom (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("intern-app", "intern-arch", "intern-data", "intern-transfer", "intern-pretrain", "intern-bench")
# Sibling packages each one's library may depend on and import.
ALLOWED = {
    "intern-app": set(),
    "intern-arch": set(),
    "intern-data": set(),
    "intern-transfer": {"intern-arch", "intern-data"},
    "intern-pretrain": {"intern-arch", "intern-data", "intern-transfer"},
    "intern-bench": {"intern-arch", "intern-data", "intern-transfer"},
}
# The app layer: Hydra and intern-app are imported by the apps' __main__ modules and app/ subpackages only.
APP_MODULES = {"hydra", "omegaconf", "intern_app"}
# Packages whose app needs intern-app as a dependency (intern-data's is an extra: its library is a leaf).
APP_DEPENDENCY = {"intern-transfer", "intern-pretrain", "intern-bench"}


def project(package: str) -> dict:
    return tomllib.loads((REPO / "packages" / package / "pyproject.toml").read_text())["project"]


def requirement_names(package: str) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0] for dep in project(package)["dependencies"]}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_versions_in_lockstep() -> None:
    versions = {project(package)["version"] for package in PACKAGES}
    assert versions == {"0.1.0"}
    for package in PACKAGES:
        meta = project(package)
        assert meta["name"] == package and meta["requires-python"] == ">=3.11"
        assert (REPO / "packages" / package / meta["readme"]).is_file()


@pytest.mark.parametrize("package", PACKAGES)
def test_dunder_version_matches(package: str) -> None:
    init = REPO / "packages" / package / "src" / package.replace("-", "_") / "__init__.py"
    assert f'__version__ = "{project(package)["version"]}"' in init.read_text()


def test_intern_arch_needs_only_torch_timm_safetensors() -> None:
    assert requirement_names("intern-arch") == {"torch", "torchvision", "timm", "safetensors"}


@pytest.mark.parametrize("package", PACKAGES)
def test_sibling_dependencies(package: str) -> None:
    siblings = {dep for dep in project(package)["dependencies"] if dep.startswith("intern-")}
    app = {"intern-app"} if package in APP_DEPENDENCY else set()
    assert siblings == {f"{name}==0.1.0" for name in ALLOWED[package] | app}


def test_intern_data_app_is_an_extra() -> None:
    assert not {"hydra-core", "omegaconf"} & requirement_names("intern-data")
    assert project("intern-data")["optional-dependencies"]["app"] == ["intern-app==0.1.0"]


@pytest.mark.parametrize("package", PACKAGES)
def test_import_rules(package: str) -> None:
    source = REPO / "packages" / package / "src"
    others = set(PACKAGES) - ALLOWED[package] - {package, "intern-app"}
    forbidden = {name.replace("-", "_") for name in others}
    if package == "intern-arch":
        forbidden |= APP_MODULES | {"lightning", "pytorch_lightning"}
    for path in source.rglob("*.py"):
        roots = imported_roots(path)
        assert not roots & forbidden, f"{path.relative_to(REPO)} imports {sorted(roots & forbidden)}"
        if package != "intern-app" and path.name != "__main__.py" and path.parent.name != "app":
            assert not roots & APP_MODULES, f"{path.relative_to(REPO)} imports Hydra outside the app layer"


def test_libraries_import_without_hydra() -> None:
    code = (
        "import sys\n"
        "sys.modules.update(hydra=None, omegaconf=None)\n"
        "import intern_data, intern_transfer, intern_pretrain, intern_bench\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
