"""Bytes moved per iteration as the batch grows under a fixed budget: the analogue of the
source's Table 8.3 (AlexNet, communications with and without the Tensor Cache).

Every figure comes from ``sn.plan`` (nothing runs). "without cache" is what a pool that
offloads every candidate regardless of the budget moves (the plan's "every candidate"
selection); "tensor cache" is the source's LRU (Note [Tensor cache] in
``csrc/plan/offload.cpp``), "ranked" the selection by idle byte-steps, and "kept" what
the plan moves, the better of those two (under ``superneurons``, by estimated time).
``-`` : that selection found no placement that fits. When the network fits without
copies, the planner compares nothing and every column is 0 except "without cache".

    python benchmarks/tensor_cache.py                              # AlexNet, 12 GiB
    python benchmarks/tensor_cache.py --model resnet50 --batches 100,200,300
    python benchmarks/tensor_cache.py --policy superneurons --batches 1000,2000,2600
"""

from __future__ import annotations

import argparse

import superneurons as sn

GIB = float(1 << 30)


def every_candidate_bytes(g: sn.Graph, batch: int, policy: str, budget: str) -> int | None:
    """Bytes moved when every candidate is copied: the plan's own record when it needed
    copies; otherwise the same plan under a budget just below its peak (so that copies are
    needed), whose "every candidate" selection does not depend on the budget."""
    p = sn.plan(g, batch, policy=policy, budget=budget)
    for c in p.offload_choices:
        if c.selection == "every candidate":
            return c.moved_bytes
    if not p.fits:
        return None
    below = sn.plan(g, batch, policy=policy, budget=p.peak_bytes - 256)
    for c in below.offload_choices:
        if c.selection == "every candidate":
            return c.moved_bytes
    return None


def moved(p: sn.MemoryPlan, selection: str) -> int | None:
    """Bytes one selection moves; 0 when the plan fits without copies (nothing was
    compared); None when it does not fit."""
    if not p.fits:
        return None
    if not p.offload_choices:
        return 0
    c = next(c for c in p.offload_choices if c.selection == selection)
    return c.moved_bytes if c.fits else None


def cell(x: int | None) -> str:
    return "-" if x is None else f"{x / GIB:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--budget", default="12GiB")
    parser.add_argument("--policy", default="liveness+offload")
    parser.add_argument("--batches", default="256,512,1024,1536,2048,2095")
    parser.add_argument("--image-size", type=int, default=None)
    args = parser.parse_args()
    size = args.image_size or (299 if args.model == "inception_v4" else 224)
    g = getattr(sn.models, args.model)(num_classes=1000, image_size=size)
    print(f"{args.model} {size}x{size}, budget {args.budget}, policy {args.policy}: GiB moved")
    print("per iteration (device -> host + host -> device)")
    print(
        f"{'batch':>6} {'fits':>5} {'without cache':>14} {'tensor cache':>13} "
        f"{'ranked':>8} {'kept':>8}  kept"
    )
    for batch in [int(b) for b in args.batches.split(",")]:
        p = sn.plan(g, batch, policy=args.policy, budget=args.budget)
        kept = p.offload_bytes + p.prefetch_bytes if p.fits else None

        winner = next((c.selection for c in p.offload_choices if c.chosen), "no copies")
        print(
            f"{batch:>6} {'yes' if p.fits else 'no':>5} "
            f"{cell(every_candidate_bytes(g, batch, args.policy, args.budget)):>14} "
            f"{cell(moved(p, 'tensor cache')):>13} {cell(moved(p, 'ranked')):>8} {cell(kept):>8}  "
            f"{winner if p.fits else '-'}"
        )


if __name__ == "__main__":
    main()
