"""Down-A sample-based contrastive learning: queue, InfoNCE, momentum encoder, projectors, instances."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from intern_transfer.downa.contrastive import (
    EMPTY,
    UNLABELLED,
    FeatureQueue,
    ImageProjector,
    MomentumEncoder,
    PixelProjector,
    RoIProjector,
    SampleContrast,
    class_pixel_instances,
    info_nce,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # these CPUs are shared: two threads thrash


def _oldest_first(queue: FeatureQueue) -> tuple[torch.Tensor, torch.Tensor]:
    shift = -int(queue.pointer)
    return queue.features.roll(shift, dims=0), queue.labels.roll(shift, dims=0)


def test_queue_wraps_around_and_keeps_the_newest_in_order() -> None:
    queue = FeatureQueue(size=5, dim=3)
    keys = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    queue.enqueue(keys[:3], torch.arange(3))
    assert queue.labels.tolist() == [0, 1, 2, EMPTY, EMPTY]
    queue.enqueue(keys[3:7])  # wraps: 2 slots at the end, 2 at the start
    assert int(queue.pointer) == 2
    features, labels = _oldest_first(queue)
    torch.testing.assert_close(features, F.normalize(keys[2:7], dim=1))
    assert labels.tolist() == [2, UNLABELLED, UNLABELLED, UNLABELLED, UNLABELLED]

    queue.enqueue(keys[7:12][:0])  # an empty batch changes nothing
    queue.enqueue(keys, torch.arange(12))  # more keys than slots: only the newest 5 stay
    features, labels = _oldest_first(queue)
    torch.testing.assert_close(features, F.normalize(keys[7:], dim=1))
    assert labels.tolist() == [7, 8, 9, 10, 11]

    resumed = FeatureQueue(size=5, dim=3)
    resumed.load_state_dict(queue.state_dict())
    assert int(resumed.pointer) == int(queue.pointer) and torch.equal(resumed.features, queue.features)


def _hand_loss(q: torch.Tensor, k: torch.Tensor, negatives: list[torch.Tensor], t: float) -> float:
    """Mean over rows of -log softmax(logits)[0], logits = [q.k, q.n...] / t, in plain Python."""
    total = 0.0
    for i in range(q.shape[0]):
        qi, ki = F.normalize(q[i], dim=0), F.normalize(k[i], dim=0)
        logits = [float(qi @ ki) / t] + [float(qi @ F.normalize(n, dim=0)) / t for n in negatives[i]]
        total += -logits[0] + math.log(sum(math.exp(v) for v in logits))
    return total / q.shape[0]


def test_info_nce_matches_a_hand_computed_cross_entropy() -> None:
    g = torch.Generator().manual_seed(1)
    q, k, past = (
        torch.randn(2, 4, generator=g),
        torch.randn(2, 4, generator=g),
        torch.randn(3, 4, generator=g),
    )
    queue = FeatureQueue(size=4, dim=4)
    queue.enqueue(past, torch.tensor([0, 1, 1]))  # slot 3 stays empty
    loss = info_nce(q, k, queue, temperature=0.2)
    assert loss.item() == pytest.approx(_hand_loss(q, k, [list(past), list(past)], 0.2), rel=1e-5)

    same_class_out = info_nce(q, k, queue, temperature=0.2, labels=torch.tensor([1, 5]))
    expected = _hand_loss(q, k, [[past[0]], list(past)], 0.2)
    assert same_class_out.item() == pytest.approx(expected, rel=1e-5)


def test_empty_slots_are_not_negatives() -> None:
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    queue = FeatureQueue(size=8, dim=4)
    queue.features.normal_()  # content of slots marked empty must not matter
    loss = info_nce(q, k, queue, temperature=0.2)
    assert loss.item() == 0.0  # only the positive: -log(e^x / e^x)
    assert loss.item() == _hand_loss(q, k, [[], [], []], 0.2)


def test_momentum_update_is_an_exact_ema_without_trainable_params() -> None:
    torch.manual_seed(3)
    online = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8))
    momentum = MomentumEncoder(online, decay=0.9)
    assert not any(p.requires_grad for p in momentum.parameters())
    for copied, source in zip(momentum.module.parameters(), online.parameters(), strict=True):
        assert torch.equal(copied, source)

    optimiser = torch.optim.SGD(online.parameters(), lr=0.5)
    online(torch.randn(16, 8)).square().mean().backward()  # also moves BN running statistics
    optimiser.step()
    old = [t.clone() for t in momentum.module.state_dict().values()]
    momentum.update(online)
    for name, new, before in zip(
        momentum.module.state_dict(), momentum.module.state_dict().values(), old, strict=True
    ):
        if new.is_floating_point():
            expected = 0.9 * before + (1 - 0.9) * online.state_dict()[name]
            assert torch.allclose(new, expected, atol=0), name
            assert not torch.equal(new, before), name


def test_gradient_reaches_the_online_projector_only() -> None:
    torch.manual_seed(4)
    online = ImageProjector(in_dim=8, dim=4, hidden_dim=16)
    momentum = MomentumEncoder(online)
    contrast = SampleContrast(dim=4, queue_size=6)
    contrast.queue.enqueue(torch.randn(6, 4))
    view_q, view_k = torch.randn(5, 8), torch.randn(5, 8)
    keys = momentum(view_k)
    assert not keys.requires_grad
    loss = contrast.loss(online(view_q), keys)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in online.parameters())
    assert all(p.grad is None for p in momentum.parameters())
    assert int(contrast.queue.pointer) == 5  # the keys went in after the loss


def test_class_pixel_instances_on_a_hand_made_mask() -> None:
    blocks = torch.tensor([[[1, 1], [2, 255]], [[0, 2], [2, 3]]])  # 2 images, 2 x 2 blocks of 2 x 2 pixels
    masks = blocks.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)  # 4 x 4: nearest gives blocks back
    embeddings = torch.randn(2, 3, 2, 2, generator=torch.Generator().manual_seed(5))
    pix = embeddings.permute(0, 2, 3, 1)  # [image, row, col] -> D
    features, classes, images = class_pixel_instances(embeddings, masks)
    assert classes.tolist() == [1, 2, 2, 3] and images.tolist() == [0, 0, 1, 1]
    expected = torch.stack(
        [(pix[0, 0, 0] + pix[0, 0, 1]) / 2, pix[0, 1, 0], (pix[1, 0, 1] + pix[1, 1, 0]) / 2, pix[1, 1, 1]]
    )
    torch.testing.assert_close(features, F.normalize(expected, dim=1))

    _, classes, images = class_pixel_instances(embeddings, masks, background=None)
    assert classes.tolist() == [1, 2, 0, 2, 3] and images.tolist() == [0, 0, 1, 1, 1]


def test_projector_shapes() -> None:
    torch.manual_seed(6)
    fpn = {"0": torch.randn(2, 8, 16, 16), "1": torch.randn(2, 8, 8, 8), "pool": torch.randn(2, 8, 4, 4)}
    boxes = [
        torch.tensor([[0.0, 0, 20, 20], [10, 10, 60, 50], [5, 30, 40, 63]]),
        torch.tensor([[8.0, 8, 40, 40]]),
    ]
    roi = RoIProjector(in_channels=8, roi_size=3, dim=5, featmap_names=("0", "1"))
    assert roi(fpn, boxes, [(64, 64), (64, 64)]).shape == (4, 5)
    assert PixelProjector(8, dim=5)(fpn["0"]).shape == (2, 5, 16, 16)
    assert ImageProjector(8, dim=5)(torch.randn(3, 8)).shape == (3, 5)
