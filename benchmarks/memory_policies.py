"""Peak memory of one training iteration under each memory policy, side by side.

Shape-only: every figure comes from ``sn.plan`` (nothing is allocated), and the executor's
measured trace equals the plan byte for byte (tests/cpu/test_memory_plan.py).

    python benchmarks/memory_policies.py            # the zoo at ImageNet size
    python benchmarks/memory_policies.py --quick    # AlexNet only

Reference (SuperNeurons paper, AlexNet at batch 200): baseline 2189 MB, liveness 1489 MB,
a 31.9% saving. Our accounting differs: every parameter also holds a gradient and a
momentum buffer (SGD with momentum), every layer has its own output and output gradient
(no in-place ReLU or dropout), and the CPU convolution workspace (im2col) is counted; see
the notes printed under the table.
"""

from __future__ import annotations

import argparse
import time

import superneurons as sn

MiB = 2**20

MODELS = {
    "alexnet": (lambda: sn.models.alexnet(num_classes=1000, image_size=224), 200),
    "vgg16": (lambda: sn.models.vgg16(num_classes=1000, image_size=224), 32),
    "resnet50": (lambda: sn.models.resnet50(num_classes=1000, image_size=224), 32),
    "resnet101": (lambda: sn.models.resnet101(num_classes=1000, image_size=224), 32),
    "resnet152": (lambda: sn.models.resnet152(num_classes=1000, image_size=224), 32),
    "inception_v4": (lambda: sn.models.inception_v4(num_classes=1000, image_size=224), 32),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="AlexNet only")
    args = parser.parse_args()
    names = ["alexnet"] if args.quick else list(MODELS)
    header = (
        f"{'model':<14}{'batch':>6}{'baseline MiB':>14}{'liveness MiB':>14}"
        f"{'live/base':>11}{'saving':>8}{'recompute MiB':>15}{'extra FLOPs':>13}"
        f"{'bound MiB':>11}{'live/bound':>11}{'rec/bound':>11}{'resident MiB':>14}{'plan s':>8}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        build, batch = MODELS[name]
        g = build()
        start = time.perf_counter()
        live = sn.plan(g, batch, policy="liveness")
        seconds = time.perf_counter() - start
        base = sn.plan(g, batch, policy="none")
        rec = sn.plan(g, batch, policy="liveness+recompute")  # no budget: the source's rule
        ratio = live.peak_bytes / base.peak_bytes
        bound = live.layer_bound_bytes
        print(
            f"{name:<14}{batch:>6}{base.peak_bytes / MiB:>14.0f}{live.peak_bytes / MiB:>14.0f}"
            f"{ratio:>11.3f}{1 - ratio:>8.1%}{rec.peak_bytes / MiB:>15.0f}"
            f"{rec.recompute_fraction:>13.1%}{bound / MiB:>11.0f}"
            f"{live.peak_bytes / bound:>11.2f}{rec.peak_bytes / bound:>11.2f}"
            f"{live.resident_bytes / MiB:>14.0f}{seconds:>8.2f}"
        )
    deep = sn.models.resnet(n=(6, 32, 2456, 6), num_classes=1000, image_size=224)
    start = time.perf_counter()
    p = sn.plan(deep, 16, policy="liveness", budget="12GB")
    print(
        f"\nResNet with 2,500 residual units ({len(deep)} layers, batch 16): planned in "
        f"{time.perf_counter() - start:.2f} s; peak {p.peak_bytes / 2**30:.1f} GiB, fits 12 GiB: "
        f"{p.fits} (resident {p.resident_bytes / 2**30:.1f} GiB)"
    )
    print()
    print("source (AlexNet, batch 200): baseline 2189 MB, liveness 1489 MB, saving 31.9%")
    alex = sn.models.alexnet(num_classes=1000, image_size=224)
    live = sn.plan(alex, 200, policy="liveness")
    rows = {r.kind: r for r in live.by_kind()}
    params = sum(r.param_bytes for r in rows.values())
    print(
        f"AlexNet here: parameters + momentum (resident) + gradients (inside each layer's "
        f"backward step) = {params / MiB:.0f} MiB (parameters alone {params / 3 / MiB:.0f} "
        "MiB); relu outputs "
        f"{rows['relu'].activation_bytes / MiB:.0f} MiB and dropout outputs "
        f"{rows['dropout'].activation_bytes / MiB:.0f} MiB are separate tensors (the source "
        "runs them in place); convolution workspace and saved state "
        f"{rows['conv2d'].other_bytes / MiB:.0f} MiB."
    )


if __name__ == "__main__":
    main()
