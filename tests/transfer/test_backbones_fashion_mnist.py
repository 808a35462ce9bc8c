"""A real pretrained peer backbone transfers: EfficientNet-Lite0 on 10% of Fashion-MNIST (Debian data).

The probe on ImageNet EfficientNet-Lite0 features must beat the same probe on raw pixels and on a
randomly initialised EfficientNet-Lite0. To stay near two minutes on two CPU cores: images are
upsampled to 64 px (not the model's 224), the test set is a seeded 2,000-image subsample, and the
probe is :func:`linear_probe`'s SGD strategy on a compact grid (3 learning rates x 2 weight decays,
2,000 steps); its L-BFGS search on raw pixels alone takes minutes here. Measured on this machine
(seed 0): raw pixels 82.6%, random Lite0 77.9%, ImageNet Lite0 84.6%.
"""

from __future__ import annotations

import pytest
import torch

from intern_data.readers import open_reader
from intern_data.splits import make_split
from intern_transfer.backbones import LoadedBackbone, load_backbone
from intern_transfer.probe import SGDGrid, linear_probe, log_grid

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

IMG_SIZE = 64
TEST_IMAGES = 2000
GRID = SGDGrid(lrs=log_grid(1e-3, 0.1, 1), weight_decays=(1e-5, 1e-3), momenta=(0.9,), iterations=2000)


def _stack(samples: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([s["image"] for s in samples]), torch.tensor([s["label"] for s in samples])


@torch.no_grad()
def _features(backbone: LoadedBackbone, images: torch.Tensor, batch: int = 250) -> torch.Tensor:
    return torch.cat(
        [
            backbone.model(torch.stack([backbone.preprocess(im) for im in images[i : i + batch]]))
            for i in range(0, len(images), batch)
        ]
    )


def test_efficientnet_lite0_beats_raw_pixels_and_random_init() -> None:
    train = list(open_reader("fashion_mnist", None, "train"))
    test = list(open_reader("fashion_mnist", None, "test"))
    split = make_split(((s["__key__"], s["label"]) for s in train), "10pct", seed=0, num_classes=10)
    keys = split.key_set
    x_train, y_train = _stack([s for s in train if s["__key__"] in keys])
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:TEST_IMAGES]
    x_test, y_test = _stack([test[i] for i in order.tolist()])
    assert len(x_train) == 6000

    def probe(train_feats: torch.Tensor, test_feats: torch.Tensor) -> float:
        result = linear_probe(train_feats, y_train, test_feats, y_test, strategy="sgd", sgd_grid=GRID, seed=0)
        return result.test_score

    accuracy = {"raw pixels": probe(x_train.flatten(1) / 255.0, x_test.flatten(1) / 255.0)}
    for spec in ("efficientnet_lite0:random", "efficientnet_lite0"):
        torch.manual_seed(0)
        backbone = load_backbone(spec, img_size=IMG_SIZE)
        accuracy[spec] = probe(_features(backbone, x_train), _features(backbone, x_test))
    print({name: round(acc, 4) for name, acc in accuracy.items()})

    assert accuracy["efficientnet_lite0"] > accuracy["raw pixels"] + 0.01
    assert accuracy["efficientnet_lite0"] > accuracy["efficientnet_lite0:random"] + 0.03
