"""Proxy evaluations of many architectures: cached by architecture, run in parallel processes.

A finished proxy run is a JSON file under the cache folder named by :func:`proxy_key` (architecture,
settings, data and seed), written atomically, so a repeat costs nothing and a killed search loses at
most the runs in flight. With ``workers > 1`` the runs go to a pool of spawned processes (each reads the
proxy data once and uses one thread, or GPU ``i % devices`` when there are GPUs); results come back as
each run finishes, with the position it was asked at.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import torch

from intern_arch import MetaNetCfg
from intern_data.io import atomic_write_text
from intern_pretrain.search.proxy import ProxyData, ProxyResult, ProxySettings, proxy_key, train_proxy

__all__ = ["ProxyEvaluator"]

DataLoaderFn = Callable[[], ProxyData]

_worker_data: ProxyData | None = None


def _init_worker(load: DataLoaderFn) -> None:
    global _worker_data
    torch.set_num_threads(1)
    _worker_data = load()


def _run_in_worker(cfg: MetaNetCfg, settings: ProxySettings, seed: int, device: str) -> ProxyResult:
    assert _worker_data is not None
    return train_proxy(cfg, _worker_data, settings, seed, device)


class ProxyEvaluator:
    """Scores architectures on the proxy task, from the cache when it can.

    Args:
        load_data: builds the proxy data (called once here, and once in each worker process).
        settings: the proxy training settings.
        cache_dir: the folder of finished runs.
        workers: parallel processes (1: in this process).
        devices: GPUs to spread workers over (0: the CPU).
    """

    def __init__(
        self,
        load_data: DataLoaderFn,
        settings: ProxySettings,
        cache_dir: str | Path,
        workers: int = 1,
        devices: int = 0,
    ) -> None:
        self.load_data = load_data
        self.settings = settings
        self.cache_dir = Path(cache_dir)
        self.workers = workers
        self.devices = devices
        self._data: ProxyData | None = None
        self.trained = 0  # proxy runs this evaluator trained (not read from the cache)

    @property
    def data(self) -> ProxyData:
        if self._data is None:
            self._data = self.load_data()
        return self._data

    def _path(self, cfg: MetaNetCfg, seed: int) -> Path:
        return self.cache_dir / f"{proxy_key(cfg, self.settings, self.data.fingerprint, seed)}.json"

    def cached(self, cfg: MetaNetCfg, seed: int) -> ProxyResult | None:
        path = self._path(cfg, seed)
        return ProxyResult(**json.loads(path.read_text())) if path.is_file() else None

    def _store(self, cfg: MetaNetCfg, seed: int, result: ProxyResult) -> None:
        atomic_write_text(self._path(cfg, seed), json.dumps(asdict(result)))
        self.trained += 1

    def evaluate(self, cfgs: Sequence[MetaNetCfg], seeds: Sequence[int]) -> Iterator[tuple[int, ProxyResult]]:
        """``(position, result)`` for each architecture as it finishes (cached ones first)."""
        todo = []
        for i, (cfg, seed) in enumerate(zip(cfgs, seeds, strict=True)):
            hit = self.cached(cfg, seed)
            if hit is not None:
                yield i, hit
            else:
                todo.append(i)
        if self.workers <= 1 or len(todo) <= 1:
            device = "cuda" if self.devices else "cpu"
            for i in todo:
                result = train_proxy(cfgs[i], self.data, self.settings, seeds[i], device)
                self._store(cfgs[i], seeds[i], result)
                yield i, result
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            min(self.workers, len(todo)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(self.load_data,),
        ) as pool:
            futures = {
                pool.submit(
                    _run_in_worker,
                    cfgs[i],
                    self.settings,
                    seeds[i],
                    f"cuda:{n % self.devices}" if self.devices else "cpu",
                ): i
                for n, i in enumerate(todo)
            }
            for future in as_completed(futures):
                i = futures[future]
                result = future.result()
                self._store(cfgs[i], seeds[i], result)
                yield i, result
