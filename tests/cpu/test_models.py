"""Model zoo: every builder against the real Graph, its shapes, depths and parameter counts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import superneurons as sn
from superneurons import models


def _param_count_of(g: sn.Graph, layers: list[sn.LayerSpec]) -> int:
    shapes = {spec.name: spec.shape for spec in g.layers}
    total = 0
    for spec in layers:
        a = spec.attrs
        if spec.kind == "conv2d":
            in_channels = shapes[spec.inputs[0]][0]
            out = int(a["out_channels"])
            kernel = int(a["kernel_h"]) * int(a["kernel_w"])
            total += out * (in_channels // int(a["groups"])) * kernel + out * int(a["bias"])
        elif spec.kind == "fc":
            c, h, w = shapes[spec.inputs[0]]
            total += (c * h * w + int(a["bias"])) * int(a["out_features"])
        elif spec.kind == "batchnorm":
            total += 2 * spec.shape[0]
    return total


def param_count(g: sn.Graph) -> int:
    """Trainable parameters from the layer specs alone: conv weights (+ bias), FC
    weights + bias, batch-norm scale and shift (running statistics are not trained)."""
    return _param_count_of(g, g.layers)


def count(g: sn.Graph, *kinds: str) -> int:
    return sum(spec.kind in kinds for spec in g.layers)


def counted_depth(g: sn.Graph) -> int:
    """Weighted layers on the main path: convolutions and FC, projection shortcuts excluded."""
    return sum(spec.kind in ("conv2d", "fc") and ".shortcut." not in spec.name for spec in g.layers)


def assert_classifier(g: sn.Graph, num_classes: int) -> None:
    loss = g.layers[-1]
    assert loss.kind == "softmax_cross_entropy"
    shapes = {spec.name: spec.shape for spec in g.layers}
    assert shapes[loss.inputs[0]] == (num_classes, 1, 1)
    g.check()  # one input, one loss, every output used


ZOO: dict[str, tuple[Callable[..., sn.Graph], int]] = {  # builder, usual image size
    "alexnet": (models.alexnet, 224),
    "vgg16": (models.vgg16, 224),
    "resnet50": (models.resnet50, 224),
    "resnet101": (models.resnet101, 224),
    "resnet152": (models.resnet152, 224),
    "inception_v4": (models.inception_v4, 299),
    "densenet": (models.densenet, 224),
}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_builds_at_its_usual_size(name: str) -> None:
    builder, size = ZOO[name]
    g = builder(num_classes=17, image_size=size, in_channels=3)
    assert g.layers[0].kind == "input" and g.layers[0].shape == (3, size, size)
    assert_classifier(g, 17)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_takes_other_input_channels(name: str) -> None:
    builder, size = ZOO[name]
    g = builder(num_classes=5, image_size=size, in_channels=1)
    assert g.layers[0].shape == (1, size, size)
    assert_classifier(g, 5)


# Well-known parameter counts at 1,000 classes (torchvision's resnet50/101/152, vgg16,
# densenet121/161; the reference Inception-v4 with batch norm; AlexNet with the paper's
# ungrouped widths 96-256-384-384-256 and 6x6x256 into fc6). Convolutions followed by
# batch norm carry no bias; batch norm counts its scale and shift. ResNet-50 is derived
# term by term in test_resnet50_stage_by_stage.
KNOWN_PARAMS: dict[str, tuple[Callable[[], sn.Graph], int]] = {
    "resnet50": (models.resnet50, 25_557_032),
    "resnet101": (models.resnet101, 44_549_160),
    "resnet152": (models.resnet152, 60_192_808),
    "vgg16": (models.vgg16, 138_357_544),
    "alexnet": (models.alexnet, 62_378_344),
    "densenet121": (lambda: models.densenet(depth=121), 7_978_856),
    "densenet161": (lambda: models.densenet(depth=161), 28_681_000),
    "inception_v4": (models.inception_v4, 42_679_816),
}


@pytest.mark.parametrize("name", list(KNOWN_PARAMS))
def test_parameter_counts_match_the_reference_models(name: str) -> None:
    build, expected = KNOWN_PARAMS[name]
    g = build()
    assert param_count(g) == expected
    assert g.num_params() == expected


def bottleneck_params(c_in: int, inner: int, projection: bool) -> int:
    """1x1 (c_in -> w), 3x3 (w -> w), 1x1 (w -> 4w), each with batch norm (2 per channel),
    plus a 1x1 projection c_in -> 4w with batch norm in a stage's first block."""
    out = 4 * inner
    params = c_in * inner + 2 * inner + 9 * inner * inner + 2 * inner + inner * out + 2 * out
    return params + (c_in * out + 2 * out if projection else 0)


def test_resnet50_stage_by_stage() -> None:
    # ResNet-50 = stem conv 7*7*3*64 + bn 2*64                         =      9,536
    #   + stage 1: 3 blocks, 64 -> 256 channels                         =    215,808
    #   + stage 2: 4 blocks, 256 -> 512                                 =  1,219,584
    #   + stage 3: 6 blocks, 512 -> 1024                                =  7,098,368
    #   + stage 4: 3 blocks, 1024 -> 2048                               = 14,964,736
    #   + fc 2048*1000 + 1000                                           =  2,049,000
    #   = 25,557,032
    g = models.resnet50()
    expected = {
        "stem": 9_536,
        "stage1": 215_808,
        "stage2": 1_219_584,
        "stage3": 7_098_368,
        "stage4": 14_964_736,
        "fc": 2_049_000,
    }
    assert sum(expected.values()) == 25_557_032
    assert expected["stem"] == 7 * 7 * 3 * 64 + 2 * 64
    assert expected["fc"] == 2048 * 1000 + 1000
    c_in = 64
    for stage, (blocks, inner) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
        formula = bottleneck_params(c_in, inner, True)
        formula += (blocks - 1) * bottleneck_params(4 * inner, inner, False)
        assert formula == expected[f"stage{stage + 1}"]
        c_in = 4 * inner
    for part, value in expected.items():
        layers = [s for s in g.layers if s.name == part or s.name.startswith(f"{part}.")]
        assert _param_count_of(g, layers) == value, part


@pytest.mark.parametrize("depth", [8, 20, 32, 56, 110])
def test_cifar_resnet_depth_is_6n_plus_2(depth: int) -> None:
    g = models.resnet(depth=depth, num_classes=10, image_size=32)
    n = (depth - 2) // 6
    assert counted_depth(g) == depth
    assert count(g, "add") == 3 * n
    # Two projections: into stage 2 (16 -> 32 channels, /2) and stage 3 (32 -> 64, /2).
    assert count(g, "conv2d") + count(g, "fc") == depth + 2
    adds = [spec.shape for spec in g.layers if spec.kind == "add"]
    assert adds[0] == (16, 32, 32) and adds[n] == (32, 16, 16) and adds[-1] == (64, 8, 8)
    assert_classifier(g, 10)


def test_cifar_resnet_width_and_digits_size() -> None:
    g = models.resnet(depth=20, num_classes=10, image_size=8, in_channels=1, width=8)
    adds = [spec.shape for spec in g.layers if spec.kind == "add"]
    assert adds[0] == (8, 8, 8) and adds[-1] == (32, 2, 2)
    assert_classifier(g, 10)


@pytest.mark.parametrize(
    "n", [(3, 4, 6, 3), (3, 4, 23, 3), (3, 8, 36, 3), (1, 1, 1, 1), (2, 5, 1, 3)]
)
def test_imagenet_resnet_depth_is_3_sum_n_plus_2(n: tuple[int, int, int, int]) -> None:
    g = models.resnet(n=n, num_classes=1000, image_size=224)
    assert counted_depth(g) == 3 * sum(n) + 2
    assert count(g, "add") == sum(n)
    assert count(g, "conv2d") - (counted_depth(g) - 1) == 4  # one projection per stage
    adds = [spec.shape for spec in g.layers if spec.kind == "add"]
    assert adds[0] == (256, 56, 56) and adds[-1] == (2048, 7, 7)
    assert_classifier(g, 1000)


def test_named_resnets_are_the_paper_configurations() -> None:
    for builder, n in (
        (models.resnet50, (3, 4, 6, 3)),
        (models.resnet101, (3, 4, 23, 3)),
        (models.resnet152, (3, 8, 36, 3)),
    ):
        named = builder(num_classes=10, image_size=64)
        generic = models.resnet(n=n, num_classes=10, image_size=64)
        assert [(s.kind, s.shape) for s in named.layers] == [
            (s.kind, s.shape) for s in generic.layers
        ]
    agreeing = models.resnet(depth=50, n=(3, 4, 6, 3), num_classes=10, image_size=64)
    assert counted_depth(agreeing) == 50


def test_resnet_with_2500_residual_units_builds() -> None:
    # n1=6, n2=32, n4=6 as in the depth benchmark; depth 7,502. Building is linear in
    # the number of layers (well under a second here).
    n = (6, 32, 2456, 6)
    g = models.resnet(n=n, num_classes=1000, image_size=224)
    assert count(g, "add") == 2500
    assert counted_depth(g) == 7502


def test_inception_v4_structure() -> None:
    g = models.inception_v4(num_classes=1000, image_size=299)
    concats = [spec for spec in g.layers if spec.kind == "concat"]
    # stem 3 + 4 A + reduction A + 7 B + reduction B + 3 C
    assert len(concats) == 3 + 4 + 1 + 7 + 1 + 3
    shapes = [spec.shape for spec in concats]
    assert shapes[2] == (384, 35, 35)  # stem output
    assert shapes[7] == (1024, 17, 17)  # reduction A
    assert shapes[15] == (1536, 8, 8)  # reduction B
    assert shapes[-1] == (1536, 8, 8)
    assert [len(c.inputs) for c in concats[-3:]] == [6, 6, 6]  # Inception-C's split fans
    kernels = {
        (int(s.attrs["kernel_h"]), int(s.attrs["kernel_w"])) for s in g.layers if s.kind == "conv2d"
    }
    assert {(1, 7), (7, 1), (1, 3), (3, 1)} <= kernels
    assert count(g, "dropout") == 1


def test_densenet121_structure() -> None:
    g = models.densenet(num_classes=1000, image_size=224)
    blocks = (6, 12, 24, 16)
    assert count(g, "concat") == sum(blocks)
    assert counted_depth(g) == 121  # 2 * sum(blocks) + stem + 3 transitions + fc
    transitions = [s.shape for s in g.layers if s.kind == "avgpool"]
    # 64 + 6*32 = 256 -> 128, 128 + 12*32 = 512 -> 256, 256 + 24*32 = 1024 -> 512
    assert transitions == [(128, 28, 28), (256, 14, 14), (512, 7, 7)]
    final = next(s for s in g.layers if s.name == "final.bn")
    assert final.shape == (512 + 16 * 32, 7, 7)


def test_densenet_cifar_layout_and_block_config() -> None:
    g = models.densenet(depth=100, num_classes=10, image_size=32)  # DenseNet-BC-100, k=12
    assert counted_depth(g) == 100
    assert count(g, "concat") == 3 * 16
    assert count(g, "maxpool") == 0
    assert_classifier(g, 10)
    small = models.densenet(
        block_config=(2, 3), growth_rate=8, num_classes=4, image_size=16, in_channels=1, dropout=0.2
    )
    assert count(small, "concat") == 5 and count(small, "dropout") == 5
    assert counted_depth(small) == 2 * 5 + 2 + 1
    assert_classifier(small, 4)


def test_alexnet_and_vgg16_structure() -> None:
    alex = models.alexnet(num_classes=1000, image_size=224)
    assert (count(alex, "conv2d"), count(alex, "fc")) == (5, 3)
    assert (count(alex, "lrn"), count(alex, "dropout"), count(alex, "maxpool")) == (2, 2, 3)
    vgg = models.vgg16(num_classes=10, image_size=224)
    assert (count(vgg, "conv2d"), count(vgg, "fc")) == (13, 3)
    assert count(vgg, "dropout") == 2
    pools = [s.shape for s in vgg.layers if s.kind == "maxpool"]
    assert pools[-1] == (512, 7, 7)


@pytest.mark.parametrize(
    ("build", "smallest"),
    [
        (lambda size: models.alexnet(image_size=size), 63),
        (lambda size: models.vgg16(image_size=size), 32),
        (lambda size: models.inception_v4(image_size=size), 75),
        (lambda size: models.densenet(image_size=size), 29),
        (lambda size: models.densenet(depth=40, image_size=size), 4),
    ],
    ids=["alexnet", "vgg16", "inception_v4", "densenet121", "densenet40"],
)
def test_smallest_image_size(build: Callable[[int], sn.Graph], smallest: int) -> None:
    assert_classifier(build(smallest), 1000)
    with pytest.raises(ValueError, match=f"image_size={smallest - 1} is too small.*{smallest}"):
        build(smallest - 1)


def test_small_images_build_for_resnets() -> None:
    for size in (1, 2, 8):
        assert_classifier(models.resnet(depth=8, image_size=size, in_channels=1), 10)
        assert_classifier(models.resnet(n=(1, 1, 1, 1), image_size=size), 10)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: models.resnet(), "give depth"),
        (lambda: models.resnet(depth=21), r"depth must be 6n\+2"),
        (lambda: models.resnet(depth=2), r"depth must be 6n\+2"),
        (lambda: models.resnet(depth=20.0), r"depth must be 6n\+2"),
        (lambda: models.resnet(n=(3, 4, 6)), r"n must be four integers >= 1"),
        (lambda: models.resnet(n=(3, 0, 6, 3)), r"n must be four integers >= 1"),
        (lambda: models.resnet(depth=51, n=(3, 4, 6, 3)), r"depth=51 does not match n"),
        (lambda: models.resnet(depth=20, width=0), r"width must be an integer >= 1"),
        (lambda: models.resnet50(num_classes=0), r"num_classes must be an integer >= 1"),
        (lambda: models.vgg16(image_size=0), r"image_size must be an integer >= 1"),
        (lambda: models.alexnet(in_channels=0), r"in_channels must be an integer >= 1"),
        (lambda: models.densenet(depth=122), r"depth must be one of \[121, 161, 169, 201\]"),
        (lambda: models.densenet(block_config=()), r"block_config must be a non-empty"),
        (lambda: models.densenet(depth=121, block_config=(1, 2)), r"does not match block_config"),
        (lambda: models.densenet(growth_rate=0), r"growth_rate must be an integer >= 1"),
        (lambda: models.densenet(compression=0.0), r"compression must be in \(0, 1\]"),
        (lambda: models.densenet(dropout=1.0), r"dropout must be in \[0, 1\)"),
    ],
)
def test_invalid_arguments_raise_value_error(build: Callable[[], sn.Graph], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
