"""One rank of the data-parallel tests in test_distributed.py (run under mpirun).

Prints one JSON line per rank: rank, world size, losses, parameter hash, bytes sent.
--fail die: rank 1 exits hard after two steps; --fail hang: rank 1 stops answering.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import superneurons as sn
from superneurons.distributed import DataParallelTrainer, DistributedError, world


def net() -> sn.Graph:
    """A CNN without batch norm: shard gradients then average to the global batch's."""
    g = sn.Graph()
    x = g.input(shape=(1, 8, 8))
    h = g.maxpool(g.relu(g.conv2d(x, 8, 3, padding=1)), 2)
    g.softmax_cross_entropy(g.fc(g.relu(g.fc(h, 32)), 10))
    return g


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--global-batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--compress", default="none")
    p.add_argument("--fail", choices=("none", "die", "hang"), default="none")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--stage-on-host", action="store_true", help="as a GPU session trains")
    args = p.parse_args()
    comm = world(args.timeout)
    # Synthetic images: no scikit-learn import in every rank.
    train = sn.data.synthetic((1, 8, 8), n=640, num_classes=10, seed=0)
    session = sn.Session(net(), args.global_batch // comm.size, seed=1)
    trainer = DataParallelTrainer(
        session,
        comm,
        sn.compress.make(args.compress),
        lr=0.05,
        schedule="constant",
        rebroadcast_every=3,
        stage_on_host=args.stage_on_host,
    )
    loader = sn.data.DataLoader(train, args.global_batch, seed=0, drop_last=True, prefetch=0)
    lo, hi = comm.rank * session.batch_size, (comm.rank + 1) * session.batch_size
    losses = []
    try:
        for step, (xb, yb) in enumerate(loader):
            if step == args.steps:
                break
            if step == 2 and comm.rank == 1 and args.fail == "die":
                os._exit(7)
            if step == 2 and comm.rank == 1 and args.fail == "hang":
                time.sleep(60)
            losses.append(trainer.step(xb[lo:hi], yb[lo:hi], lr=0.05)[0])
    except DistributedError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        comm.abort(3)
        return 3
    record = {
        "rank": comm.rank,
        "world_size": comm.size,
        "losses": losses,
        "params_sha256": trainer.params_sha256(),
        "bytes_sent_per_iteration": trainer.bytes_sent_per_iteration,
        "drift_log": trainer.drift_log,
    }
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
