"""Nox sessions: `nox -s tests`, `nox -s lint`, `nox -s arch_standalone`, `nox -s fidelity`."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests"]

PACKAGES = ("intern-app", "intern-arch", "intern-data", "intern-transfer", "intern-pretrain", "intern-bench")
TORCH = ("torch==2.14.1", "torchvision==0.29.1")
# The README's test command runs the same marker expression.
MARKERS = "not gpu"


def dev_requirement(name: str) -> str:
    """The pinned line for `name` in requirements-dev.txt."""
    lines = Path("requirements-dev.txt").read_text().splitlines()
    return next(line for line in lines if line.split("=")[0].split(">")[0].strip() == name)


def install_project(session: nox.Session) -> None:
    """Torch, all six packages editable with scripts/install.sh's extras, and the dev requirements."""
    session.install(*TORCH)
    # as scripts/install.sh: the data app, the text side, the loggers (TensorBoard, wandb)
    extras = {
        "intern-arch": "[text]",
        "intern-data": "[app]",
        "intern-pretrain": "[loggers]",
        "intern-bench": "[loggers]",
    }
    editable = [arg for package in PACKAGES for arg in ("-e", f"packages/{package}{extras.get(package, '')}")]
    session.install(*editable, "-r", "requirements-dev.txt")


@nox.session
def tests(session: nox.Session) -> None:
    """All six packages, editable, and the full test suite but `gpu`."""
    install_project(session)
    session.run("python", "-m", "pytest", "-m", MARKERS, *session.posargs)


@nox.session
def fidelity(session: nox.Session) -> None:
    """The paper's claims over several seeds, written to benchmarks/FIDELITY.md (not a default session).

    About 50 min on 2 CPU cores, one thread per process; arguments go to the script (`-- --seeds 0,1,2`).
    """
    install_project(session)
    session.run("python", "benchmarks/fidelity.py", *session.posargs, env={"OMP_NUM_THREADS": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check over the whole repository."""
    session.install(dev_requirement("ruff"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def arch_standalone(session: nox.Session) -> None:
    """intern-arch installed alone (not editable): its models build and its tests pass."""
    session.install(*TORCH)
    session.install("packages/intern-arch", dev_requirement("pytest"), dev_requirement("pytest-timeout"))
    session.run("python", "-c", "import intern_arch; intern_arch.create_model('mnb4')")
    session.run("python", "-m", "pytest", "tests/arch", "-m", MARKERS, *session.posargs)
