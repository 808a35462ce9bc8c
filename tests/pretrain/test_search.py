"""The search's training side: a killed search resumes the same log without repeating finished
evaluations, the proxy cache, the Pareto front, and ``stage=search`` end to end on a tiny world."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

import intern_pretrain.search.evaluator as evaluator_module
from intern_app import AppError
from intern_arch.search import BaseStage, PPOSettings, SearchSpace
from intern_data.world import generate
from intern_pretrain.app.main import main
from intern_pretrain.search import (
    ProxyData,
    ProxyEvaluator,
    ProxySettings,
    SearchSettings,
    pareto_front,
    read_log,
    run_search,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SPACE = SearchSpace(
    base=tuple(BaseStage(c, 1, s) for c, s in [(8, 1), (8, 2), (16, 2), (16, 2), (16, 1), (16, 2)]),
    head_dim=8,
    stem_width=8,
    head_width=16,
)
SETTINGS = SearchSettings(evaluations=6, batch=3, target_macs=1e6, img_size=32)
PROXY = ProxySettings(steps=2, batch_size=8, warmup_steps=1)


def tiny_proxy_data() -> ProxyData:
    """24 training and 12 held-out images of the world's fine classification at 32 px."""

    def split(name: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        samples = list(generate("world_cls_fine", name, count=count, img_size=32))
        return torch.stack([s["image"] for s in samples]), torch.tensor([s["label"] for s in samples])

    (train_x, train_y), (val_x, val_y) = split("train", 24), split("val", 12)
    return ProxyData(train_x, train_y, val_x, val_y, num_classes=24, fingerprint="tiny")


class Killed(Exception):
    """Stands for the process dying in the middle of a proxy run."""


def _search(run_dir: Path, cache: Path) -> list[dict[str, Any]]:
    evaluator = ProxyEvaluator(tiny_proxy_data, PROXY, cache)
    return run_search(SPACE, SETTINGS, PPOSettings(), evaluator, run_dir)


def _comparable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_a_killed_search_resumes_the_same_log_without_repeating_evaluations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unbroken = _search(tmp_path / "unbroken", tmp_path / "cache_a")

    calls = []
    real = evaluator_module.train_proxy

    def dies_on_the_fifth(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0])
        if len(calls) == 5:  # the second batch's second architecture
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluator_module, "train_proxy", dies_on_the_fifth)
    with pytest.raises(Killed):
        _search(tmp_path / "broken", tmp_path / "cache_b")
    assert len(read_log(tmp_path / "broken")) == 4
    calls.clear()
    monkeypatch.setattr(evaluator_module, "train_proxy", real)
    counting = []
    monkeypatch.setattr(
        evaluator_module, "train_proxy", lambda *a, **k: counting.append(a[0]) or real(*a, **k)
    )
    resumed = _search(tmp_path / "broken", tmp_path / "cache_b")
    assert len(counting) == 2  # only the two architectures that had not finished
    assert _comparable(resumed) == _comparable(unbroken)
    states = [
        torch.load(tmp_path / f / "search_state.pt", weights_only=False) for f in ("unbroken", "broken")
    ]
    for key, value in states[0]["ppo"]["controller"].items():
        assert torch.equal(value, states[1]["ppo"]["controller"][key]), key
    assert [h["update"] for h in states[1]["history"]] == [0, 1]

    counting.clear()
    _search(tmp_path / "again", tmp_path / "cache_b")  # same draws, every proxy run cached
    assert counting == []


def test_the_random_arm_samples_uniformly_with_the_same_budget(tmp_path: Path) -> None:
    evaluator = ProxyEvaluator(tiny_proxy_data, PROXY, tmp_path / "cache")
    settings = SearchSettings(evaluations=4, batch=3, policy="random", target_macs=1e6, img_size=32)
    records = run_search(SPACE, settings, PPOSettings(), evaluator, tmp_path / "random")
    assert [r["update"] for r in records] == [0, 0, 0, 1]
    assert {r["policy"] for r in records} == {"random"}


def test_the_pareto_front_matches_brute_force() -> None:
    points = [(3.0, 0.5), (1.0, 0.2), (2.0, 0.4), (2.5, 0.3), (4.0, 0.5), (5.0, 0.7), (1.5, 0.1)]
    dominated = {p for p in points for q in points if q != p and q[0] <= p[0] and q[1] >= p[1]}
    assert pareto_front(points) == sorted(set(points) - dominated)


TINY_APP = [
    "stage=search",
    "stage.search.img_size=32",
    "stage.search.evaluations=4",
    "stage.search.batch=2",
    "stage.search.target_macs=1.0e6",
    "stage.proxy.data.sizes={train:24,val:12}",
    "stage.proxy.train.steps=2",
    "stage.proxy.train.batch_size=8",
    "stage.proxy.train.warmup_steps=1",
    "stage.references=[mnb_test]",
    "stage.top_k.k=2",
    "stage.top_k.steps=3",
    "stage.scaling.multiples=[2]",
    "stage.scaling.depth_coefs=[1.0,2.0]",
    "stage.scaling.steps=2",
    "stage.scaling.fit_steps=4",
]


def test_the_app_searches_retrains_scales_and_writes_the_family(
    compose_app: Callable[..., Any], intern_root: Path, tmp_path: Path
) -> None:
    cfg = compose_app("pretrain", [*TINY_APP, f"paths.root_dir={intern_root}"])
    main(cfg)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["evaluations"] == 4 and summary["space_size"] == 250**6
    assert [m["name"] for m in summary["family"]] == ["searched", "searched_x2"]
    assert summary["family"][1]["macs"] > summary["family"][0]["macs"]
    assert len(json.loads((tmp_path / "top_k.json").read_text())) == 2
    assert json.loads((tmp_path / "references.json").read_text())[0]["name"] == "mnb_test"
    assert (tmp_path / "report" / "rewards.png").stat().st_size and (
        tmp_path / "report" / "pareto.png"
    ).is_file()
    model = instantiate(OmegaConf.load(tmp_path / "family" / "searched_x2.yaml").backbone)
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("stage.space.expansions=[]", "field 'expansions' needs at least one choice"),
        ("stage.search.policy=greedy", "stage.search: search policy 'greedy' is not one of"),
        (
            "+stage.ppo.gamma=0.9",
            "stage.ppo: PPOSettings.__init__() got an unexpected keyword argument 'gamma'",
        ),
        ("stage.references=[r50]", "stage.references: ['r50'] are not MetaNet variants"),
    ],
)
def test_the_app_names_the_bad_setting_in_one_line(
    compose_app: Callable[..., Any], intern_root: Path, override: str, message: str
) -> None:
    cfg = compose_app("pretrain", [*TINY_APP, override, f"paths.root_dir={intern_root}"])
    with pytest.raises(AppError, match=re.escape(message)) as raised:
        main(cfg)
    assert "\n" not in str(raised.value)


@pytest.mark.slow  # two spawned processes import torch and the packages: about 20 s here
def test_parallel_workers_give_the_sequential_results(tmp_path: Path) -> None:
    """Two spawned proxy processes score each architecture as this process does, bit for bit."""
    archs = [SPACE.metanet_cfg(SPACE.decode([0] * 24)), SPACE.metanet_cfg(SPACE.decode([1] * 24))]
    one = ProxyEvaluator(tiny_proxy_data, PROXY, tmp_path / "one")
    two = ProxyEvaluator(tiny_proxy_data, PROXY, tmp_path / "two", workers=2)
    sequential = dict(one.evaluate(archs, [0, 0]))
    parallel = dict(two.evaluate(archs, [0, 0]))
    assert {i: r.accuracy for i, r in parallel.items()} == {i: r.accuracy for i, r in sequential.items()}
    assert {i: r.train_loss for i, r in parallel.items()} == {i: r.train_loss for i, r in sequential.items()}
    assert two.trained == 2 and sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )
