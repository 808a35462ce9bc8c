"""The search loop: sample a batch of architectures, score them on the proxy, update the policy.

Run folder files::

    search_log.jsonl   one record per evaluated architecture (its tokens, stages, MACs, params,
                       proxy accuracy, reward, the update it was sampled at), appended as each finishes
    search_state.pt    the policy (controller + PPO state), the sampling generator, the batch being
                       evaluated and the per-update history; replaced atomically

A killed search resumes from these: the pending batch is re-read (not re-sampled), its finished
records are kept and only the rest are evaluated (the proxy cache makes even an evaluation in flight
cheap to repeat when it had finished). ``policy="random"`` samples uniformly from the space with the
same budget and log: the baseline the controller is measured against.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from intern_arch.profile import profile_metanet
from intern_arch.search import PPO, Controller, PPOSettings, SearchSpace, arch_key, mnas_reward
from intern_data.io import atomic_write_bytes
from intern_pretrain.search.evaluator import ProxyEvaluator

__all__ = ["POLICIES", "SearchSettings", "read_log", "run_search"]

POLICIES = ("controller", "random")
log = logging.getLogger(__name__)

LOG_NAME = "search_log.jsonl"
STATE_NAME = "search_state.pt"


@dataclass(frozen=True)
class SearchSettings:
    """The search's budget, reward and policy (paper 4.4: target 600M MACs, exponent -0.07)."""

    evaluations: int = 48
    batch: int = 8
    policy: str = "controller"
    seed: int = 0
    target_macs: float = 600e6
    exponent: float = -0.07
    img_size: int = 224
    hidden: int = 64

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"search policy {self.policy!r} is not one of {POLICIES}")
        if self.evaluations < 1 or self.batch < 1:
            raise ValueError(
                f"search needs evaluations >= 1 and batch >= 1, got {self.evaluations}, {self.batch}"
            )

    def reward(self, accuracy: float, macs: int) -> float:
        """MnasNet's reward of an architecture at this search's target and exponent."""
        return mnas_reward(accuracy, macs, self.target_macs, self.exponent)


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """The search log's records in sampling order (a torn last line from a kill is dropped)."""
    path = run_dir / LOG_NAME
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return sorted({r["index"]: r for r in records}.values(), key=lambda r: r["index"])


def _append(run_dir: Path, record: dict[str, Any]) -> None:
    with (run_dir / LOG_NAME).open("a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()


class _SearchState:
    """What survives a kill besides the log (see the module docstring)."""

    def __init__(self, space: SearchSpace, settings: SearchSettings, ppo_settings: PPOSettings) -> None:
        torch.manual_seed(settings.seed)
        self.ppo = PPO(Controller(space.vocab_sizes, settings.hidden), ppo_settings)
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.pending: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        torch.save(
            {
                "ppo": self.ppo.state_dict(),
                "generator": self.generator.get_state(),
                "pending": self.pending,
                "history": self.history,
            },
            buffer,
        )
        atomic_write_bytes(path, buffer.getvalue())

    def load(self, path: Path) -> None:
        state = torch.load(path, weights_only=False)
        self.ppo.load_state_dict(state["ppo"])
        self.generator.set_state(state["generator"])
        self.pending, self.history = state["pending"], state["history"]

    def sample(self, policy: str, n: int, vocab_sizes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if policy == "controller":
            return self.ppo.controller.sample(n, self.generator)
        tokens = torch.stack([torch.randint(v, (n,), generator=self.generator) for v in vocab_sizes], 1)
        return tokens, torch.zeros(n)


def run_search(
    space: SearchSpace,
    settings: SearchSettings,
    ppo_settings: PPOSettings,
    evaluator: ProxyEvaluator,
    run_dir: str | Path,
) -> list[dict[str, Any]]:
    """Run (or resume) a search in ``run_dir`` until ``settings.evaluations`` architectures are scored;
    returns the log's records."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = _SearchState(space, settings, ppo_settings)
    if (run_dir / STATE_NAME).is_file():
        state.load(run_dir / STATE_NAME)
    records = read_log(run_dir)
    while state.pending is not None or len(records) < settings.evaluations:
        if state.pending is None:
            n = min(settings.batch, settings.evaluations - len(records))
            tokens, log_probs = state.sample(settings.policy, n, space.vocab_sizes)
            state.pending = {
                "update": len(state.history),
                "first": len(records),
                "tokens": tokens,
                "log_probs": log_probs,
            }
            state.save(run_dir / STATE_NAME)
        batch = _evaluate_batch(space, settings, evaluator, run_dir, state.pending, records)
        rewards = torch.tensor([r["reward"] for r in batch])
        stats = (
            state.ppo.update(state.pending["tokens"], state.pending["log_probs"], rewards)
            if settings.policy == "controller"
            else {}
        )
        state.history.append(
            {"update": state.pending["update"], "mean_reward": float(rewards.mean()), **stats}
        )
        records = [*records[: state.pending["first"]], *batch]
        state.pending = None
        state.save(run_dir / STATE_NAME)
    return records


def _evaluate_batch(
    space: SearchSpace,
    settings: SearchSettings,
    evaluator: ProxyEvaluator,
    run_dir: Path,
    pending: dict[str, Any],
    records: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    first = pending["first"]
    done = {r["index"]: r for r in records if r["index"] >= first}
    archs = [space.decode(t.tolist()) for t in pending["tokens"]]
    cfgs = [space.metanet_cfg(a) for a in archs]
    todo = [i for i in range(len(archs)) if first + i not in done]
    results = evaluator.evaluate([cfgs[i] for i in todo], [settings.seed] * len(todo))
    for position, result in results:
        i = todo[position]
        profile = profile_metanet(cfgs[i], settings.img_size)
        record = {
            "index": first + i,
            "update": pending["update"],
            "policy": settings.policy,
            "arch": arch_key(archs[i]),
            "tokens": pending["tokens"][i].tolist(),
            "macs": profile.macs,
            "params": profile.params,
            "accuracy": result.accuracy,
            "train_loss": result.train_loss,
            "reward": settings.reward(result.accuracy, profile.macs),
            "seconds": result.seconds,
            "stages": cfgs[i].as_dict(),
        }
        _append(run_dir, record)
        done[record["index"]] = record
        log.info(
            "[%d/%d] %s: %.1fM MACs, accuracy %.3f, reward %.4f (%.0f s)",
            record["index"] + 1, settings.evaluations, record["arch"], record["macs"] / 1e6,
            record["accuracy"], record["reward"], record["seconds"],
        )  # fmt: skip
    return [done[first + i] for i in range(len(archs))]
