"""Linear probe on cached features: both strategies of section 9.3 against a scikit-learn sweep, one run.

Features: a randomly initialised ResNet-18 (timm, ``zero_init_last=False``, 512-d pooled features)
on a Fashion-MNIST subset (``--n-train`` / ``--n-test`` images from the packaged train / test files,
28 px padded to 32, grey to RGB, ImageNet normalisation), extracted once through
:class:`FeatureCache` (a second run reads them back). ``--synthetic`` uses Gaussian class clusters
instead (no data package needed).

Both sides see the same features, the same stratified validation split of the training set (from
:func:`stratified_split`), the same selection rule (best validation accuracy, refit on the whole
training set, one test evaluation) and the same number of settings:

- ``intern``: :func:`linear_probe(strategy="both")`: the SGD grid (56 heads: lr 1e-4..0.1 x wd
  1e-6..1e-3 x momentum 0.9/0.99, Nesterov, 10,000 iterations of batch 64, steps at 30/60/90%) in one
  pass, plus CLIP's L-BFGS search (15 values of C), plus the two refits;
- ``sklearn``: ``LogisticRegression(C, max_iter=1000)`` (L-BFGS, scikit-learn's defaults, as CLIP
  uses it) on StandardScaler features, for as many values of C, log-spaced over [1e-6, 1e6], as the
  intern side has settings; best C on validation, refit, test. ``--sklearn-warm-start`` adds a
  second sweep with ``warm_start=True`` along increasing C.

``--peer``: accuracy of the L-BFGS strategy alone against its scikit-learn peer (issue 12, item 3), on
real features: ImageNet EfficientNet-Lite0 (packaged weights) at ``--img-size`` px on the packaged
Fashion-MNIST (60,000 train / all 10,000 test images) and scikit-learn digits (1,438 / 359, the
reader's split), read by intern-data's readers and cached in :class:`FeatureCache`. For each dataset,
data regime (``10pct``, ``100pct``: the class-stratified draw of intern-data's split manifests, as
intern-data's ``regime_manifest`` makes it) and split seed, both sides get the same training rows, the
same validation part (:func:`stratified_split`, ``val_fraction`` 0.2, as ``linear_probe``), refit on
all the regime's rows with the chosen C, and one test evaluation on the same test features:

- ``ours``: :func:`linear_probe(strategy="lbfgs")` with the library's :class:`LBFGSSearch` (the
  settings of ``conf/protocol/linear_probe.yaml``), as intern-bench's ``protocol=lbfgs`` runs it;
- ``peer``: ``LogisticRegression(C, max_iter=1000)`` (L-BFGS) on the features as extracted (float64),
  C from 11 log-spaced values over [1e-3, 1e2] chosen by validation accuracy (ties: the smaller C).

The table gives each cell and, per dataset x regime, both means, the paired mean difference (ours -
peer, test points) and the worst cell (the target: a paired mean of at least -0.5 and no cell below -3),
and the mean seconds of each side with the speed-up. The peer's results are deterministic and take
minutes per Fashion-MNIST cell, so they are memoised in ``sklearn_peer.json`` in ``--cache-dir``
(seconds as measured by the run that computed them); delete it to measure them again.

Threads: ``--threads`` for torch and (through threadpoolctl) for scikit-learn's BLAS/OpenMP alike; 1 by
default because these CPUs are shared and two threads on a busy core thrash.

    python benchmarks/probe_speed.py
    python benchmarks/probe_speed.py --iterations 2000 --n-train 5000    # quicker
    python benchmarks/probe_speed.py --synthetic --dim 1024 --classes 100
    python benchmarks/probe_speed.py --peer --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from intern_data.readers import open_reader
from intern_data.splits import make_split
from intern_transfer.backbones import LoadedBackbone, load_backbone
from intern_transfer.probe import (
    FeatureCache,
    Features,
    LBFGSSearch,
    SGDGrid,
    cached_features,
    linear_probe,
    stratified_split,
)

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
PEER_CS = np.logspace(-3, 2, 11)  # issue 12, item 3: 11 values of C, log-spaced over [1e-3, 1e2]


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_subset(split: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(FASHION_MNIST / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(FASHION_MNIST / f"{prefix}-labels-idx1-ubyte.gz")
    pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return (
        torch.from_numpy(images[pick.numpy()]),
        torch.from_numpy(labels[pick.numpy()]).long(),
        [f"{split}/{i}" for i in pick.tolist()],
    )


def batches(images: torch.Tensor, labels: torch.Tensor, keys: list[str], batch_size: int = 256):
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    for start in range(0, len(labels), batch_size):
        x = images[start : start + batch_size].float().div(255).unsqueeze(1)
        x = F.pad(x, (2, 2, 2, 2)).expand(-1, 3, -1, -1)
        yield (x - mean) / std, labels[start : start + batch_size], keys[start : start + batch_size]


def fashion_features(args: argparse.Namespace):
    import timm

    torch.manual_seed(args.seed)
    # zero_init_last=False: timm zeroes each block's last BN by default, which at random init leaves
    # only the strided 1x1 shortcuts, i.e. features of a handful of pixels (chance-level probes).
    model = timm.create_model("resnet18", pretrained=False, num_classes=0, zero_init_last=False)
    cache = FeatureCache(args.cache_dir)
    preprocess = "fashion-mnist 28px, pad 2 to 32px, grey->RGB, ImageNet mean/std"
    out = {}
    start = time.perf_counter()
    for split, n in (("train", args.n_train), ("test", args.n_test)):
        images, labels, keys = fashion_subset(split, n, args.seed)
        out[split] = cached_features(
            cache,
            model,
            batches(images, labels, keys),
            dataset="fashion-mnist",
            split=f"{split}-{n}-seed{args.seed}",
            preprocess=preprocess,
        )
    status = "read from cache" if cache.stats["hit"] == 2 else "extracted"
    print(f"features: random-init resnet18 on Fashion-MNIST, {status} in {time.perf_counter() - start:.1f} s")
    return out["train"][:2], out["test"][:2]


def synthetic_features(args: argparse.Namespace):
    g = torch.Generator().manual_seed(args.seed)
    centres = torch.randn(args.classes, args.dim, generator=g)
    mix = torch.randn(args.dim, args.dim, generator=g) / math.sqrt(args.dim)

    def draw(n: int):
        y = torch.randint(0, args.classes, (n,), generator=g)
        x = (0.35 * centres[y] + torch.randn(n, args.dim, generator=g)) @ mix
        return torch.relu(x + 0.5), y

    print(f"features: synthetic, {args.classes} Gaussian clusters in {args.dim} dims, ReLU")
    return draw(args.n_train), draw(args.n_test)


def sklearn_sweep(xtr, ytr, xte, yte, train_idx, val_idx, cs, warm_start: bool):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    warnings.simplefilter("ignore", ConvergenceWarning)  # counted in ``at_limit`` instead
    start = time.perf_counter()
    scaler = StandardScaler().fit(xtr[train_idx])
    xfit, xval = scaler.transform(xtr[train_idx]), scaler.transform(xtr[val_idx])
    best, model, at_limit = (-1.0, None), None, 0
    for c in cs:
        if model is None or not warm_start:
            model = LogisticRegression(C=c, max_iter=1000, warm_start=warm_start)
        model.set_params(C=c)
        model.fit(xfit, ytr[train_idx])
        at_limit += int(model.n_iter_.max()) >= 1000
        acc = float((model.predict(xval) == ytr[val_idx]).mean())
        if acc > best[0]:
            best = (acc, c)
    scaler = StandardScaler().fit(xtr)
    final = LogisticRegression(C=best[1], max_iter=1000).fit(scaler.transform(xtr), ytr)
    test_acc = float((final.predict(scaler.transform(xte)) == yte).mean())
    return time.perf_counter() - start, best[1], best[0], test_acc, at_limit


def packaged_features(name: str, backbone: LoadedBackbone, cache: FeatureCache) -> dict[str, Features]:
    """Features of the packaged dataset ``name``'s train and test splits (all images, reader order)."""
    out = {}
    for split in ("train", "test"):
        samples = list(open_reader(name, None, split))
        images = torch.stack([s["image"] for s in samples])
        labels = torch.tensor([s["label"] for s in samples])
        keys = [s["__key__"] for s in samples]
        batches = (
            (backbone.preprocess(images[i : i + 250]), labels[i : i + 250], keys[i : i + 250])
            for i in range(0, len(keys), 250)
        )
        out[split] = cached_features(
            cache,
            backbone.model,
            batches,
            dataset=name,
            split=split,
            preprocess=backbone.preprocess_cfg,
            model_id=backbone.fingerprint,
        )
    return out


def sklearn_peer(x, y, train_idx, val_idx, xt, yt) -> tuple[float, float, float, float]:
    """The peer: C of :data:`PEER_CS` chosen on validation, refit on all rows, one test evaluation.
    Returns (C, validation accuracy, test accuracy, seconds)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    warnings.simplefilter("ignore", ConvergenceWarning)
    start = time.perf_counter()
    best_acc, best_c = -1.0, math.nan
    for c in PEER_CS:
        model = LogisticRegression(C=c, max_iter=1000).fit(x[train_idx], y[train_idx])
        acc = float((model.predict(x[val_idx]) == y[val_idx]).mean())
        if acc > best_acc:
            best_acc, best_c = acc, float(c)
    final = LogisticRegression(C=best_c, max_iter=1000).fit(x, y)
    test_acc = float((final.predict(xt) == yt).mean())
    return best_c, best_acc, test_acc, time.perf_counter() - start


def cached_peer(
    path: Path, key: str, compute: Callable[[], tuple[float, float, float, float]]
) -> tuple[float, float, float, float]:
    """``compute()``'s peer result, memoised under ``key`` in the JSON file ``path`` (the peer is
    deterministic given the features and the split, and takes minutes per seed on Fashion-MNIST)."""
    memo = json.loads(path.read_text()) if path.exists() else {}
    if key not in memo:
        memo[key] = list(compute())
        fresh = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**fresh, key: memo[key]}, indent=1))
    return tuple(memo[key])


def peer_comparison(args: argparse.Namespace) -> None:
    """``--peer``: the L-BFGS strategy against scikit-learn's sweep on EfficientNet-Lite0 features."""
    from threadpoolctl import threadpool_limits

    backbone = load_backbone("efficientnet_lite0", img_size=args.img_size)
    cache = FeatureCache(args.cache_dir)
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(args.threads)
    print(f"EfficientNet-Lite0 (ImageNet) at {args.img_size} px, {args.threads} thread(s), seeds {seeds}")
    header = (
        f"{'dataset':<14} {'regime':<7} {'seed':>4} {'fit':>6} {'val':>6} | {'peer C':>7} {'val':>6} "
        f"{'test':>6} {'s':>6} | {'ours C':>7} {'val':>6} {'test':>6} {'s':>6} | {'diff':>6}"
    )
    cells: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    for name in args.datasets.split(","):
        start, misses = time.perf_counter(), cache.stats["miss"]
        feats = packaged_features(name, backbone, cache)
        train, test = feats["train"], feats["test"]
        print(f"\n{name}: train {tuple(train.features.shape)}, test {tuple(test.features.shape)}, features "
              f"{'read from cache' if cache.stats['miss'] == misses else 'extracted'} in "
              f"{time.perf_counter() - start:.1f} s\n{header}")  # fmt: skip
        row_of = {key: i for i, key in enumerate(train.keys)}
        items = list(zip(train.keys, train.labels.tolist(), strict=True))
        xt_np, yt_np = test.features.double().numpy(), test.labels.numpy()
        for regime in args.regimes.split(","):
            for seed in seeds:
                manifest = make_split(items, regime, seed=seed, dataset=name)
                rows = torch.tensor(sorted(row_of[key] for key in manifest.keys))
                x, y = train.features[rows], train.labels[rows]
                train_idx, val_idx = stratified_split(y, 0.2, seed)
                started = time.perf_counter()
                ours = linear_probe(x, y, test.features, test.labels, strategy="lbfgs", seed=seed)
                ours_s = time.perf_counter() - started
                assert torch.equal(ours.val_indices, val_idx)
                split = (x.double().numpy(), y.numpy(), train_idx.numpy(), val_idx.numpy())
                with threadpool_limits(args.threads):
                    peer_c, peer_val, peer_test, peer_s = cached_peer(
                        Path(args.cache_dir) / "sklearn_peer.json",
                        f"{backbone.fingerprint}/{name}/{regime}/{seed}",
                        partial(sklearn_peer, *split, xt_np, yt_np),
                    )
                lb = ours.results["lbfgs"]
                diff = 100 * (lb.test_score - peer_test)
                cells.setdefault((name, regime), []).append(
                    (100 * peer_test, 100 * lb.test_score, peer_s, ours_s)
                )
                print(
                    f"{name:<14} {regime:<7} {seed:>4} {len(train_idx):>6} {len(val_idx):>6} | "
                    f"{peer_c:>7.3g} {peer_val:>6.4f} {peer_test:>6.4f} {peer_s:>6.1f} | "
                    f"{lb.hparams['C']:>7.3g} {lb.val_score:>6.4f} {lb.test_score:>6.4f} {ours_s:>6.1f} | "
                    f"{diff:>+6.2f}",
                    flush=True,
                )
    print(
        "\n| dataset | regime | seeds | peer test acc | ours | paired mean diff | worst cell | target "
        "| peer s | ours s | speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, regime), rows in cells.items():
        peer, ours, peer_s, ours_s = np.array(rows).T
        diffs = ours - peer
        met = diffs.mean() >= -0.5 and diffs.min() >= -3.0
        print(
            f"| {name} | {regime} | {len(rows)} | {peer.mean():.2f} | {ours.mean():.2f} | "
            f"{diffs.mean():+.2f} | {diffs.min():+.2f} | {'met' if met else 'NOT met'} | "
            f"{peer_s.mean():.1f} | {ours_s.mean():.1f} | {peer_s.sum() / ours_s.sum():.1f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2_000)
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "intern" / "probe_features"))
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--sklearn-warm-start", action="store_true")
    parser.add_argument("--peer", action="store_true", help="L-BFGS vs the scikit-learn peer (docstring)")
    parser.add_argument("--datasets", default="fashion_mnist,digits")
    parser.add_argument("--regimes", default="10pct,100pct")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--img-size", type=int, default=64)
    args = parser.parse_args()
    if args.peer:
        peer_comparison(args)
        return

    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    (xtr, ytr), (xte, yte) = synthetic_features(args) if args.synthetic else fashion_features(args)
    n_classes = int(ytr.max()) + 1
    print(f"train {tuple(xtr.shape)}, test {tuple(xte.shape)}, {n_classes} classes, {args.threads} thread(s)")

    grid = SGDGrid(iterations=args.iterations, batch_size=args.batch_size)
    search = LBFGSSearch()
    start = time.perf_counter()
    result = linear_probe(
        xtr, ytr, xte, yte, strategy="both", seed=args.seed, sgd_grid=grid, lbfgs_search=search
    )
    ours = time.perf_counter() - start
    sgd, lbfgs = result.results["sgd"], result.results["lbfgs"]
    settings = len(sgd.search) + len(lbfgs.search)

    train_idx, val_idx = stratified_split(ytr, 0.2, args.seed)
    assert torch.equal(val_idx, result.val_indices)
    cs = np.logspace(-6, 6, settings)
    x_np, y_np, xt_np, yt_np = xtr.double().numpy(), ytr.numpy(), xte.double().numpy(), yte.numpy()
    with threadpool_limits(args.threads):
        sk = sklearn_sweep(x_np, y_np, xt_np, yt_np, train_idx.numpy(), val_idx.numpy(), cs, False)
        skw = (
            sklearn_sweep(x_np, y_np, xt_np, yt_np, train_idx.numpy(), val_idx.numpy(), cs, True)
            if args.sklearn_warm_start
            else None
        )

    print(f"\n{settings} settings each side ({len(sgd.search)} SGD heads + {len(lbfgs.search)} L-BFGS fits)")
    print(f"{'method':<44} {'seconds':>8} {'val acc':>8} {'test acc':>8}  chosen")
    print(
        f"{'intern SGD grid (search + refit)':<44} {sgd.seconds:8.1f} {sgd.val_score:8.4f} "
        f"{sgd.test_score:8.4f}  {sgd.hparams}"
    )
    print(
        f"{'intern L-BFGS search (search + refit)':<44} {lbfgs.seconds:8.1f} {lbfgs.val_score:8.4f} "
        f"{lbfgs.test_score:8.4f}  C={lbfgs.hparams['C']:.3g} "
        f"({sum(e['iterations'] >= 1000 for e in lbfgs.search)} of {len(lbfgs.search)} fits stopped at "
        "max_iter=1000)"
    )
    print(
        f"{'intern linear_probe, both -> ' + result.strategy:<44} {ours:8.1f} {result.val_score:8.4f} "
        f"{result.test_score:8.4f}"
    )
    for name, row in (("sklearn LogisticRegression sweep", sk), ("sklearn sweep, warm_start=True", skw)):
        if row is not None:
            print(
                f"{name:<44} {row[0]:8.1f} {row[2]:8.4f} {row[3]:8.4f}  C={row[1]:.3g} "
                f"({row[4]} of {settings} fits stopped at max_iter=1000)"
            )
    print(
        f"\nspeed-up vs sklearn sweep: {sk[0] / ours:.1f}x (target >= 10x); "
        f"test accuracy {result.test_score:.4f} vs {sk[3]:.4f} "
        f"({100 * (result.test_score - sk[3]):+.2f} points)"
    )
    if skw is not None:
        print(f"speed-up vs warm-started sklearn sweep: {skw[0] / ours:.1f}x")


if __name__ == "__main__":
    main()
