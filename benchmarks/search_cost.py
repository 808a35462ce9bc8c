"""GV-A search's cost: what one evaluated architecture costs, split into its parts, and what parallel
proxy workers buy, measured in one process on the same sampled architectures.

Per architecture: the controller's share (sampling a batch and one PPO update, divided by the batch),
counting its MACs on the meta device, and its proxy run (``--steps`` steps of ``--batch`` at the
proxy's resolution); then the same architectures through the evaluator with 1 and with ``--workers``
processes (fresh caches), as a wall-time ratio. Space and proxy settings are conf/stage/search.yaml's.

    python benchmarks/search_cost.py                       # 6 architectures, 100 steps, 2 workers
    python benchmarks/search_cost.py --archs 8 --steps 150 --json search_cost.json
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from intern_app import config_dir
from intern_arch.profile import profile_metanet
from intern_arch.search import PPO, Controller, PPOSettings, SearchSpace
from intern_data.world import get_dataset, world_shards
from intern_pretrain.search import ProxyEvaluator, ProxySettings, load_proxy_data, train_proxy


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", type=int, default=6, help="architectures sampled (default 6)")
    parser.add_argument("--steps", type=int, default=100, help="proxy steps per architecture")
    parser.add_argument("--workers", type=int, default=2, help="parallel proxy processes compared with 1")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--cache", type=Path, default=Path("cache"), help="world shards (cache/world)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    return parser.parse_args()


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    stage = OmegaConf.load(config_dir() / "stage" / "search.yaml")
    space = SearchSpace.from_config(OmegaConf.to_container(stage.space))
    proxy = ProxySettings(**{**OmegaConf.to_container(stage.proxy.train), "steps": args.steps})
    folder = world_shards("world_cls_fine", args.cache / "world", ["train", "val"], img_size=args.img_size)
    load = functools.partial(
        load_proxy_data, folder, "train", "val", len(get_dataset("world_cls_fine").label_space)
    )
    data = load()

    torch.manual_seed(0)
    ppo = PPO(Controller(space.vocab_sizes), PPOSettings())
    (tokens, log_probs), sample_s = timed(ppo.controller.sample, args.archs)
    _, update_s = timed(ppo.update, tokens, log_probs, torch.rand(args.archs))
    cfgs = [space.metanet_cfg(space.decode(t.tolist())) for t in tokens]
    profile_s = [timed(profile_metanet, cfg, args.img_size)[1] for cfg in cfgs]
    proxy_s = [timed(train_proxy, cfg, data, proxy, 0)[1] for cfg in cfgs]

    walls = {}
    for workers in (1, args.workers):
        with tempfile.TemporaryDirectory() as cache:
            evaluator = ProxyEvaluator(load, proxy, cache, workers=workers)
            _, walls[workers] = timed(lambda e=evaluator: list(e.evaluate(cfgs, [0] * len(cfgs))))

    numbers = {
        "archs": args.archs,
        "proxy_steps": args.steps,
        "controller_s_per_arch": (sample_s + update_s) / args.archs,
        "macs_count_s_per_arch": statistics.fmean(profile_s),
        "proxy_s_per_arch": {"mean": statistics.fmean(proxy_s), "min": min(proxy_s), "max": max(proxy_s)},
        "evaluator_wall_s": {str(k): v for k, v in walls.items()},
        "parallel_speedup": walls[1] / walls[args.workers],
    }
    print(json.dumps(numbers, indent=2))
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
