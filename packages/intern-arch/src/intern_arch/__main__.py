"""``python -m intern_arch list|profile|zoo|install``: the model family from the command line."""

import argparse
import sys
import time

import torch

from . import create_model, list_models, metanet_cfgs
from .profile import count_params, profile_model

# Models above this size are counted on the meta device only in ``zoo`` unless --all is given.
ZOO_STEP_LIMIT = 200_000_000


def _source(name: str) -> str:
    return metanet_cfgs[name].source if name in metanet_cfgs else "timm ResNet-50 (paper R50)"


def cmd_list(_: argparse.Namespace) -> None:
    for name in list_models():
        print(f"{name:10s} {_source(name)}")


def cmd_profile(args: argparse.Namespace) -> None:
    p = profile_model(args.model, args.img_size, training=args.training)
    print(f"{p.name} at {p.img_size}x{p.img_size}, batch 1")
    print(f"  params        {p.params / 1e6:10.2f} M")
    print(f"  MACs          {p.macs / 1e9:10.3f} G   (multiply-adds: the paper's 'GFLOPs', as timm/fvcore)")
    print(f"  FLOPs         {p.flops / 1e9:10.3f} G   (torch FlopCounterMode: 2 per multiply-add)")
    if p.train_flops is not None:
        print(f"  train FLOPs   {p.train_flops / 1e9:10.3f} G   (forward + backward; depthwise over-counted)")


def cmd_zoo(args: argparse.Namespace) -> None:
    """Build every model, print its size and cost, and run a tiny forward/backward on the CPU."""
    print(f"{'model':10s} {'params':>10s} {'GMACs':>8s} {'at':>4s}  step at {args.img_size}px")
    for name in list_models():
        prof = profile_model(name)
        line = f"{name:10s} {prof.params / 1e6:9.2f}M {prof.macs / 1e9:8.2f} {prof.img_size:4d}  "
        if prof.params > ZOO_STEP_LIMIT and not args.all:
            print(line + "counted on the meta device only (use --all for a CPU step)")
            continue
        torch.manual_seed(0)
        model = create_model(name, num_classes=10)
        model.train()
        start = time.perf_counter()
        logits = model(torch.randn(2, 3, args.img_size, args.img_size))
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
        loss.backward()
        grads = sum(p.grad is not None for p in model.parameters())
        print(
            line + f"loss {loss.item():.3f}, grads on {grads}/{len(list(model.parameters()))} tensors, "
            f"{count_params(model) / 1e6:.2f}M with a 10-class head, {time.perf_counter() - start:.2f}s"
        )


def cmd_install(args: argparse.Namespace) -> None:
    """Write a searched family member as a named model config."""
    from .search.install import install_model_config

    try:
        path = install_model_config(args.member, args.name, args.conf_dir, force=args.force)
    except (OSError, ValueError) as err:
        raise SystemExit(f"python -m intern_arch install: {err}") from None
    print(f"wrote {path}: use it as model={args.name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m intern_arch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered models and the figures each follows").set_defaults(func=cmd_list)
    prof = sub.add_parser("profile", help="parameters, MACs and FLOPs of one model")
    prof.add_argument("model", choices=list_models(), metavar="MODEL")
    prof.add_argument("--img-size", type=int, default=None, help="input side (default: the model's own)")
    prof.add_argument("--training", action="store_true", help="also count forward + backward FLOPs")
    prof.set_defaults(func=cmd_profile)
    zoo = sub.add_parser("zoo", help="build every model, count it and run a tiny training step")
    zoo.add_argument("--img-size", type=int, default=64)
    zoo.add_argument("--all", action="store_true", help="also step models over 200M parameters on the CPU")
    zoo.set_defaults(func=cmd_zoo)
    install = sub.add_parser(
        "install", help="a searched family member (family/<name>.json) as conf/model/<name>"
    )
    install.add_argument("member", help="a family/<name>.json of a stage=search run")
    install.add_argument("--name", required=True, help="the model config's name (model=<name>)")
    install.add_argument(
        "--conf-dir", default="conf/model", help="where model configs live (default conf/model)"
    )
    install.add_argument("--force", action="store_true", help="replace an existing config of that name")
    install.set_defaults(func=cmd_install)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
