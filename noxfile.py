"""Nox sessions beside the README's `make test`: `nox -s tests` (the same suite in a fresh venv),
`nox -s slow` (tests too long for the default suite), `nox -s lint`, `nox -s arch_standalone`,
`nox -s fidelity` (the paper's claims, not a default session)."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests"]

PACKAGES = ("intern-app", "intern-arch", "intern-data", "intern-transfer", "intern-pretrain", "intern-bench")
TORCH = ("torch==2.14.1", "torchvision==0.29.1")
# The README's `make test` runs the same marker expression (Makefile: TEST_MARKERS).
MARKERS = "not gpu and not slow"
# as scripts/install.sh: the data app, the text side, the loggers (TensorBoard, wandb)
EXTRAS = {
    "intern-arch": "[text]",
    "intern-data": "[app]",
    "intern-pretrain": "[loggers]",
    "intern-bench": "[loggers]",
}


def dev_requirement(name: str) -> str:
    """The pinned line for `name` in requirements-dev.txt."""
    lines = Path("requirements-dev.txt").read_text().splitlines()
    return next(line for line in lines if line.split("=")[0].split(">")[0].strip() == name)


def install_project(session: nox.Session) -> None:
    """Torch, the six packages (editable, with their extras) and the dev tools."""
    session.install(*TORCH)
    editable = [arg for package in PACKAGES for arg in ("-e", f"packages/{package}{EXTRAS.get(package, '')}")]
    session.install(*editable, "-r", "requirements-dev.txt")


@nox.session
def tests(session: nox.Session) -> None:
    """The default suite (what `make test` runs) in a fresh virtual environment."""
    install_project(session)
    session.run("python", "-m", "pytest", "-m", MARKERS, *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """The tests too long for the default suite (`slow`: multi-process fine-tuning, real-data probes)."""
    install_project(session)
    session.run("python", "-m", "pytest", "-m", "slow and not gpu", *session.posargs)


@nox.session
def fidelity(session: nox.Session) -> None:
    """The paper's claims over several seeds, written to benchmarks/FIDELITY.md (not a default session).

    About 25 min on 2 CPU cores, one thread per process; arguments go to the script (`-- --seeds 0,1,2`).
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
    """intern-arch installed alone (not editable, no extras): its models build, its tests pass, and it
    reads the Up-A hand-over of `experiment=smoke` (backbone, neck, box head; the text side needs
    the `text` extra) and builds a Faster R-CNN from it. The smoke run itself uses the project's
    environment (`.venv`, made by `make test` or `scripts/install.sh`)."""
    project_python = Path(".venv/bin/python")
    if not project_python.is_file():
        session.error("run `make test` (or bash scripts/install.sh) first: the smoke export is made in .venv")
    tmp = Path(session.create_tmp()).resolve()
    session.run(
        str(project_python), "-m", "intern_pretrain", "experiment=smoke", "evaluate=null",
        "progress=false", f"paths.root_dir={tmp}", f"hydra.run.dir={tmp / 'smoke'}", external=True,
    )  # fmt: skip
    session.install(*TORCH)
    session.install("packages/intern-arch", dev_requirement("pytest"), dev_requirement("pytest-timeout"))
    session.run("python", "-c", "import intern_arch; intern_arch.create_model('mnb4')")
    env = {
        "INTERN_SMOKE_EXPORT": str(tmp / "smoke" / "upa_l" / "export"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    session.run("python", "-m", "pytest", "tests/arch", "-m", MARKERS, *session.posargs, env=env)
