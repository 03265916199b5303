"""Worker for tests/test_distributed.py: a few engine steps of a small net, alone or under ``torchrun``.

    python tests/workers/ddp_engine_worker.py OUT_DIR               # one process, global batch 8
    torchrun --standalone --nproc_per_node 2 tests/workers/ddp_engine_worker.py OUT_DIR

Every rank writes ``OUT_DIR/rank<R>_of<W>.pt`` with its final weights and the epoch losses.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from crowdlib import distributed
from crowdlib.data.datasets import SeededSampler
from crowdlib.engine import train_one_epoch
from crowdlib.repro import fixed_threads, seed_everything


class Pairs(Dataset):
    """16 fixed (image, density) pairs; ``(index, seed)`` items as crowdlib's samplers yield them."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(7)
        self.x = torch.randn(16, 3, 16, 16, generator=g)
        self.y = torch.rand(16, 1, 16, 16, generator=g)

    def __len__(self) -> int:
        return 16

    def __getitem__(self, item):
        i = int(item[0])
        return {"image": self.x[i], "target": self.y[i]}


def mse(outputs, targets):
    loss = ((outputs - targets["target"]) ** 2).mean()
    return {"loss": loss, "mse": loss}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path, help="folder for rank<R>_of<W>.pt")
    p.add_argument("--epochs", type=int, default=2, help="passes over the 16 pairs")
    args = p.parse_args()
    info = distributed.init_from_env("cpu")
    seed_everything(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))
    if info.enabled:
        if info.rank:  # a different init on the other ranks: DDP must broadcast rank 0's weights
            for prm in model.parameters():
                nn.init.normal_(prm, std=0.1)
        seed_everything(info.rank)
    net = distributed.wrap(model, torch.device("cpu"), info)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    ds = Pairs()
    with fixed_threads(1):
        for epoch in range(args.epochs):
            g = torch.Generator().manual_seed(100 + epoch)
            sampler = SeededSampler(len(ds), True, g, info.rank, info.world_size)
            loader = DataLoader(ds, batch_size=8 // info.world_size, sampler=sampler)
            stats = train_one_epoch(net, mse, loader, opt, torch.device("cpu"), epoch, progress=False)
            losses.append(stats["loss"])
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({"weights": {k: v.clone() for k, v in model.state_dict().items()}, "losses": losses,
                "images": stats["images"]}, args.out / f"rank{info.rank}_of{info.world_size}.pt")
    distributed.shutdown()


if __name__ == "__main__":
    main()
