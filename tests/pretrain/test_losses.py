"""Up-A-G losses and terms on tiny tensors: references by hand, stop-gradient, queue mechanics, the
weighted sum of named terms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from intern_pretrain.core import LogitScale, gather_with_grad, rank_offset_labels
from intern_pretrain.upa_g import Objective, StepOutputs, TowerDims
from intern_pretrain.upa_g.terms import (
    ClipLoss,
    ContrastiveTerm,
    MaskedLanguageTerm,
    MLMLoss,
    SimilarTextLoss,
    SimilarTextTerm,
    SimSiamHead,
    SimSiamTerm,
    TextFeatureQueue,
    mlm_loss,
    simsiam_loss,
)


def _unit(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=-1)


def test_single_process_helpers_are_identity() -> None:
    x = torch.randn(3, 4)
    assert gather_with_grad(x) is x
    assert rank_offset_labels(3, 2).tolist() == [6, 7, 8]


def test_clip_loss_matches_cross_entropy_by_hand() -> None:
    img, txt = _unit(5, 8, seed=1), _unit(5, 8, seed=2)
    scale = 7.0
    logits = scale * img @ txt.t()
    labels = torch.arange(5)
    expected = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))
    torch.testing.assert_close(ClipLoss()(img, txt, scale), expected)
    parts = ClipLoss()(img, txt, scale, output_dict=True)
    torch.testing.assert_close(parts["image_to_text"], F.cross_entropy(logits, labels))


def test_clip_loss_low_for_perfect_alignment() -> None:
    x = _unit(16, 32, seed=3)
    aligned = ClipLoss()(x, x, 100.0)
    random = ClipLoss()(x, _unit(16, 32, seed=4), 100.0)
    assert aligned < 1e-3
    assert random > 1.0


def test_logit_scale_init_and_clamp() -> None:
    scale = LogitScale()
    assert math.isclose(float(scale().detach()), 1 / 0.07, rel_tol=1e-5)
    with torch.no_grad():
        scale.log_scale.fill_(10.0)
    assert math.isclose(float(scale().detach()), 100.0, rel_tol=1e-5)
    scale().backward()
    assert float(scale.log_scale.grad) == 0.0  # saturated: no gradient pushes it further
    scale.clamp_()
    assert math.isclose(float(scale.log_scale.detach()), math.log(100.0), rel_tol=1e-6)
    with torch.no_grad():
        scale.log_scale.fill_(-3.0)
    assert math.isclose(float(scale().detach()), 1.0, rel_tol=1e-6)


def test_simsiam_loss_range_and_stop_gradient() -> None:
    p1, p2 = torch.randn(6, 8, requires_grad=True), torch.randn(6, 8, requires_grad=True)
    z1, z2 = torch.randn(6, 8, requires_grad=True), torch.randn(6, 8, requires_grad=True)
    loss = simsiam_loss(p1, p2, z1, z2)
    assert -1.0 <= float(loss) <= 1.0
    loss.backward()
    assert z1.grad is None and z2.grad is None  # targets are stop-gradient
    assert p1.grad is not None and p1.grad.abs().sum() > 0
    same = torch.randn(4, 8)
    torch.testing.assert_close(simsiam_loss(same, same, same, same), torch.tensor(-1.0))
    torch.testing.assert_close(simsiam_loss(same, same, -same, -same), torch.tensor(1.0))


def test_simsiam_head_range_and_gradients() -> None:
    head = SimSiamHead(12, proj_dim=16, pred_dim=4)
    x1 = torch.randn(8, 12, requires_grad=True)
    loss = head(x1, torch.randn(8, 12))
    assert loss.ndim == 0 and -1.0 <= float(loss.detach()) <= 1.0
    loss.backward()
    assert head.projector[0].weight.grad is not None and head.predictor[0].weight.grad is not None
    assert x1.grad is not None  # through the predictor branch, the target branch is detached


def test_mlm_loss_ignores_unmasked_and_handles_none_masked() -> None:
    logits = torch.randn(2, 5, 11, requires_grad=True)
    labels = torch.full((2, 5), -100)
    labels[0, 1], labels[1, 3] = 4, 7
    expected = F.cross_entropy(torch.stack([logits[0, 1], logits[1, 3]]), torch.tensor([4, 7]))
    torch.testing.assert_close(mlm_loss(logits, labels), expected)
    torch.testing.assert_close(MLMLoss()(logits, labels), expected)
    empty = mlm_loss(logits, torch.full((2, 5), -100))
    assert float(empty) == 0.0 and empty.requires_grad
    empty.backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) == 0.0


def test_queue_fifo_and_wrap_around() -> None:
    q = TextFeatureQueue(dim=2, size=4)
    rows = F.normalize(torch.tensor([[1.0, k] for k in range(6)]), dim=-1)
    q.enqueue(rows[:3])
    assert len(q) == 3 and int(q.ptr) == 3
    torch.testing.assert_close(q.valid(), rows[:3])
    q.enqueue(rows[3:6])  # wraps: slots hold 4, 5, 2, 3
    assert len(q) == 4 and int(q.ptr) == 2
    torch.testing.assert_close(q.valid(), rows[2:6])  # oldest first
    torch.testing.assert_close(q.features, torch.stack([rows[4], rows[5], rows[2], rows[3]]))
    many = F.normalize(torch.randn(9, 2), dim=-1)
    q.enqueue(many)  # more than the queue holds: the newest 4 stay
    torch.testing.assert_close(q.valid(), many[-4:])


def test_queue_nearest_neighbour_on_constructed_vectors() -> None:
    q = TextFeatureQueue(dim=3, size=8)
    bank = torch.eye(3)
    q.enqueue(bank)
    query = torch.tensor([[0.1, 0.9, 0.0], [5.0, 0.0, 1.0], [0.0, 0.2, 0.3]])
    neighbours, idx = q.nearest(query)
    assert idx.tolist() == [1, 0, 2]
    torch.testing.assert_close(neighbours, bank[[1, 0, 2]])
    # unfilled slots (zeros) are never candidates, even for a query they would "match" best
    q2 = TextFeatureQueue(dim=2, size=8)
    q2.enqueue(torch.tensor([[1.0, 0.0]]))
    assert q2.nearest(torch.tensor([[-1.0, 0.0]]))[1].tolist() == [0]


def test_queue_state_dict_round_trip() -> None:
    q = TextFeatureQueue(dim=4, size=5)
    q.enqueue(torch.randn(7, 4))
    state = q.state_dict()
    assert set(state) == {"features", "ptr", "filled"}
    q2 = TextFeatureQueue(dim=4, size=5)
    q2.load_state_dict(state)
    torch.testing.assert_close(q2.valid(), q.valid())
    assert int(q2.ptr) == int(q.ptr) and len(q2) == len(q)
    x = torch.randn(3, 4)
    q.enqueue(x)
    q2.enqueue(x)
    torch.testing.assert_close(q2.features, q.features)


def test_similar_text_loss_empty_then_filled() -> None:
    sts = SimilarTextLoss(dim=8, queue_size=16)
    img = _unit(4, 8, seed=5).requires_grad_(True)
    txt = _unit(4, 8, seed=6)
    first = sts([img, img], txt, 10.0)
    assert float(first) == 0.0 and len(sts.queue) == 4
    first.backward()
    # queue now holds txt: each caption is its own nearest neighbour, so the loss is CLIP's i->t term
    second = sts([img], txt, 10.0)
    torch.testing.assert_close(second, F.cross_entropy(10.0 * img @ txt.t(), torch.arange(4)))
    assert len(sts.queue) == 8
    sts.eval()
    sts([img], txt, 10.0)
    assert len(sts.queue) == 8  # no enqueue outside training


DIMS = TowerDims(feature_dim=8, embed_dim=8, text_width=5, vocab_size=20)


def _outputs(seed: int = 0, views: int = 2) -> StepOutputs:
    g = torch.Generator().manual_seed(seed)
    return StepOutputs(
        image_features=[torch.randn(6, 8, generator=g) for _ in range(views)],
        image_embeds=[_unit(6, 8, seed=seed + 10 + i) for i in range(views)],
        text_embeds=[_unit(6, 8, seed=seed + 20 + i) for i in range(views)],
        logit_scale=torch.tensor(1 / 0.07),
    )


def _with_mlm_copy(out: StepOutputs, term: MaskedLanguageTerm, seed: int = 0) -> StepOutputs:
    g = torch.Generator().manual_seed(seed)
    labels = torch.full((6, 5), -100)
    labels[:, 2] = torch.arange(6)
    out.text_copies[id(term)] = (torch.randn(6, 5, 5, generator=g), labels)
    return out


def test_plain_clip_objective_equals_clip_loss() -> None:
    objective = Objective({"cl": ContrastiveTerm(DIMS)})
    out = _outputs(views=1)
    total, parts = objective(out)
    torch.testing.assert_close(total, ClipLoss()(out.image_embeds[0], out.text_embeds[0], out.logit_scale))
    assert set(parts) == {"cl", "cl/i0t0", "loss"}


def test_objective_is_the_weighted_sum_of_its_terms() -> None:
    mlm = MaskedLanguageTerm(DIMS, weight=0.5)
    objective = Objective({
        "cl": ContrastiveTerm(DIMS, weight=0.5, image_views=2, text_views=2),
        "simsiam": SimSiamTerm(DIMS, weight=0.5, proj_dim=16, pred_dim=4),
        "mlm": mlm,
        "sts": SimilarTextTerm(DIMS, weight=0.3, queue_size=32),
    })  # fmt: skip
    out = _with_mlm_copy(_outputs(), mlm)
    objective(out)  # fills the queue with the captions
    total, parts = objective(out)
    clip = ClipLoss()
    cl = torch.stack([clip(i, t, out.logit_scale) for i in out.image_embeds for t in out.text_embeds]).mean()
    torch.testing.assert_close(parts["cl"], cl)
    states, labels = out.copy_of(mlm)
    chosen = labels != -100
    torch.testing.assert_close(parts["mlm"], mlm_loss(mlm.head(states[chosen]), labels[chosen]).detach())
    assert float(parts["sts"]) > 0 and (objective.image_views, objective.text_views) == (2, 2)
    expected = 0.5 * (parts["cl"] + parts["simsiam"] + parts["mlm"]) + 0.3 * parts["sts"]
    torch.testing.assert_close(total.detach(), expected)

    summed = Objective({"cl": ContrastiveTerm(DIMS, image_views=2, text_views=2, reduction="sum")})
    torch.testing.assert_close(summed(out)[1]["cl"], 4 * cl)


def test_every_term_parameter_gets_a_gradient() -> None:
    mlm = MaskedLanguageTerm(DIMS)
    objective = Objective({
        "cl": ContrastiveTerm(DIMS, image_views=2, text_views=2),
        "simsiam": SimSiamTerm(DIMS, proj_dim=16, pred_dim=4),
        "mlm": mlm,
        "sts": SimilarTextTerm(DIMS, queue_size=32),
    })  # fmt: skip
    out = _with_mlm_copy(_outputs(1), mlm)
    for t in (*out.image_embeds, *out.image_features):
        t.requires_grad_(True)
    objective(out)[0].backward()
    assert all(p.grad is not None for p in objective.parameters())
    assert all(t.grad is not None for t in out.image_embeds)


def test_term_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="reduction"):
        ContrastiveTerm(DIMS, reduction="max")
    with pytest.raises(ValueError, match="views"):
        ContrastiveTerm(DIMS, image_views=3)
    with pytest.raises(ValueError, match="at least one term"):
        Objective({})
