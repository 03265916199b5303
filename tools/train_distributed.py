#!/usr/bin/env python
"""Train one Crowd-SDNet run on one or several processes (``torchrun``), and save the result from rank 0.

    # one process (CPU or one GPU)
    python tools/train_distributed.py --config run.json --out result.pt
    # four GPUs of one machine: DistributedDataParallel, NCCL, train.batch_size is the global batch
    torchrun --nproc_per_node 4 tools/train_distributed.py --shanghaitech ../shared/data/ShanghaiTech --part B \\
        --arg input_scale=1.0 --arg crop=704 --arg batch_size=48 --arg backbone=resnet50 --arg epochs=80 --out shb.pt

The config is a JSON or YAML file holding overrides of :func:`crowdlib.methods.sdnet.train.default_config`, or
``--shanghaitech ROOT`` for :func:`crowdlib.methods.sdnet.study.shanghaitech_config` (``--arg name=v`` passes its
keyword arguments); ``--set a.b=v`` then overrides a key of the config (``v`` is read as YAML). The result (weights, pseudo-box store, history, validation choices) is written by
rank 0 only; ``--every-rank`` also writes ``<out stem>.rank<R>.pt`` from each rank (used by the tests to check
that the ranks end with identical weights).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", type=Path, help="JSON or YAML file of run-config overrides (sdnet default_config)")
    src.add_argument("--shanghaitech", metavar="ROOT", help="ShanghaiTech root: train with shanghaitech_config")
    p.add_argument("--part", default="B", choices=["A", "B"], help="ShanghaiTech part with --shanghaitech")
    p.add_argument("--arg", dest="kwargs", action="append", default=[], metavar="NAME=VALUE",
                   help="with --shanghaitech: a keyword argument of shanghaitech_config (input_scale=1.0); repeatable")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, dotted (train.epochs=80); VALUE parsed as YAML; repeatable")
    p.add_argument("--out", type=Path, required=True, help="where rank 0 writes the result checkpoint (.pt)")
    p.add_argument("--every-rank", action="store_true", help="also write <out stem>.rank<R>.pt from every rank")
    p.add_argument("--no-progress", action="store_true", help="no per-step progress bar")
    return p.parse_args(argv)


def apply_sets(cfg: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """``cfg`` with each ``a.b=v`` of ``sets`` applied (nested dicts created as needed)."""
    for item in sets:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        node = cfg
        *parents, leaf = key.split(".")
        for k in parents:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise SystemExit(f"--set {key}: {k} is not a section of the config")
        node[leaf] = yaml.safe_load(value)
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from crowdlib import distributed
    from crowdlib.methods.sdnet.train import train_sdnet
    from crowdlib.repro import save_checkpoint

    if args.config is not None:
        if not args.config.is_file():
            raise SystemExit(f"--config {args.config}: no such file")
        text = args.config.read_text()
        cfg = json.loads(text) if args.config.suffix == ".json" else yaml.safe_load(text)
    else:
        from crowdlib.methods.sdnet.study import shanghaitech_config
        kwargs = {}
        for item in args.kwargs:
            if "=" not in item:
                raise SystemExit(f"--arg expects NAME=VALUE, got {item!r}")
            name, value = item.split("=", 1)
            kwargs[name] = yaml.safe_load(value)
        try:
            cfg = shanghaitech_config(args.shanghaitech, part=args.part, **kwargs)
        except TypeError as exc:
            raise SystemExit(f"--arg: {exc}") from exc
    cfg = apply_sets(dict(cfg or {}), args.sets)
    info = distributed.init_from_env(cfg.get("device"))
    try:
        result = train_sdnet(cfg, progress=not args.no_progress)
        result["world_size"] = info.world_size
        if args.every_rank:
            save_checkpoint(args.out.with_name(f"{args.out.stem}.rank{info.rank}.pt"), result)
        if distributed.is_main(info):
            save_checkpoint(args.out, result)
            h = result["history"][-1] if result["history"] else {}
            print(f"[train_distributed] {info.world_size} process(es): {len(result['history'])} epochs, "
                  f"last loss {h.get('loss', float('nan')):.4f}, {result['train_seconds']:.1f} s -> {args.out}",
                  flush=True)
        distributed.barrier()
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
