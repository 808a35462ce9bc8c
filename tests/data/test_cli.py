"""``python -m intern_data labels ...`` on the installed WordNet."""

import json
from collections.abc import Callable
from typing import Any

import pytest

from intern_data.cli import main

pytestmark = pytest.mark.realdata  # needs Debian's wordnet-base


def test_labels_build_writes_the_closure(tmp_path, capsys) -> None:
    out = tmp_path / "taxonomy.json"
    assert main(["labels", "build", "--synsets", "dog.n.01", "cat.n.01", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    names = json.dumps(data)
    assert "carnivore" in names and "entity" in names
    assert "1 root(s)" in capsys.readouterr().out


def test_labels_show_prints_the_path_to_the_root(capsys) -> None:
    assert main(["labels", "show", "dog.n.01"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("wn:n02084071: dog")
    assert "mammal > placental > carnivore > canine > dog" in out


def test_detection_queries_pair_concepts_with_scenes(capsys) -> None:
    argv = ["labels", "queries", "dog.n.01", "ball.n.01", "--kind", "detection", "--scenes", "street.n.01"]
    assert main(argv) == 0
    queries = capsys.readouterr().out.splitlines()
    assert "dog street" in queries and "domestic dog ball" in queries
    assert all(len(q.split()) >= 2 for q in queries)


def test_unknown_synset_is_one_line_and_exit_2(capsys) -> None:
    assert main(["labels", "show", "nosuchthing.n.01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuchthing" in err[0]


def test_module_dispatches_subcommands(python_m: Callable[..., Any]) -> None:
    result = python_m("intern_data", "labels", "show", "cat.n.01")
    assert result.returncode == 0 and "feline" in result.stdout
