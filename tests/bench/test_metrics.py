"""GV-B metrics against reference implementations on the same inputs.

- VOC AP50: the matching and PR curve against pycocotools (COCOeval at IoU 0.5, whose per-image
  matches give the raw curve and whose 101-point precision must equal ours interpolated the COCO
  way), the VOC2007 11-point / all-point formulas against the devkit's Python code restated here.
- MR^-2: derivable cases and a literal implementation of the CityPersons text.
- WIDER FACE: a literal transcription of the official Python evaluation.
- mIoU: numpy and scikit-learn confusion matrices. FPR@recall: scikit-learn's ``roc_curve``.
- Depth: BTS's ``compute_errors`` in numpy. Accuracies: scikit-learn.
- Distributed exactness: ``merge_state`` of halves, and 2 gloo processes against 1.
"""

from __future__ import annotations

import contextlib
import io
import math
import multiprocessing
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    roc_curve,
)

import intern_bench.metrics as M
from intern_bench.metrics import (
    DepthMetrics,
    DepthRMSE,
    FPRAtRecall,
    LogAverageMissRate,
    SegmentationMIoU,
    VOCDetectionAP,
    WiderFaceAP,
    classification_metric,
    coco_map,
    garg_crop_mask,
    nyu_eigen_crop_mask,
    subsets_by_height,
)
from intern_bench.metrics.miss_rate import CITYPERSONS_SETUPS

# ----------------------------------------------------------------------------- data


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter), inter / area_a[:, None]


def make_detection_set(
    seed: int, n_images: int = 30, n_classes: int = 4, difficult_frac: float = 0.0
) -> tuple[list[dict[str, torch.Tensor]], list[dict[str, torch.Tensor]]]:
    """Images with disjoint ground truth (one per 64-px cell), jittered and spurious detections.

    Disjoint ground truth makes VOC's "highest-IoU box" and COCO's "best free box" rules agree. A
    detection whose IoU with a difficult box is < 0.5 but whose overlap over its own area is >= 0.5
    is removed, so COCO's crowd rule (overlap over detection area) agrees with VOC's difficult rule.
    Scores are distinct, exact in float32.
    """
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n_images):
        cells = rng.permutation(16)[: rng.integers(0, 7)]
        gt = []
        for c in cells:
            x0, y0 = (c % 4) * 64 + rng.uniform(0, 20), (c // 4) * 64 + rng.uniform(0, 20)
            w, h = rng.uniform(10, 44, size=2)
            gt.append([x0, y0, x0 + w, y0 + h])
        gt = np.asarray(gt, dtype=np.float32).reshape(-1, 4)
        labels = rng.integers(0, n_classes, len(gt))
        difficult = rng.random(len(gt)) < difficult_frac
        dets, det_labels = [], []
        for box, lab in zip(gt, labels, strict=True):
            size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
            for _ in range(rng.integers(0, 4)):
                dets.append(box + rng.normal(0, 0.12, 4) * size)
                det_labels.append(lab if rng.random() < 0.85 else rng.integers(n_classes))
        for _ in range(rng.integers(0, 4)):
            x0, y0 = rng.uniform(0, 230, size=2)
            w, h = rng.uniform(8, 60, size=2)
            dets.append(np.array([x0, y0, x0 + w, y0 + h]))
            det_labels.append(rng.integers(n_classes))
        dets = np.asarray(dets, dtype=np.float32).reshape(-1, 4)
        dets[:, 2:] = np.maximum(dets[:, 2:], dets[:, :2] + 2)
        det_labels = np.asarray(det_labels, dtype=np.int64)
        if difficult.any() and len(dets):
            keep = np.ones(len(dets), dtype=bool)
            for j in np.nonzero(difficult)[0]:
                iou, ioa = _box_iou(dets.astype(np.float64), gt[j : j + 1].astype(np.float64))
                same = det_labels == labels[j]
                keep &= ~(same & (iou[:, 0] < 0.5) & (ioa[:, 0] >= 0.5))
            dets, det_labels = dets[keep], det_labels[keep]
        images.append((gt, labels, difficult, dets, det_labels))
    total = sum(len(im[3]) for im in images)
    all_scores = ((rng.permutation(total) + 1) / (total + 1)).astype(np.float32)
    preds, targets, start = [], [], 0
    for gt, labels, difficult, dets, det_labels in images:
        scores = all_scores[start : start + len(dets)]
        start += len(dets)
        preds.append(
            {
                "boxes": torch.from_numpy(dets),
                "scores": torch.from_numpy(scores),
                "labels": torch.from_numpy(det_labels),
            }
        )
        targets.append(
            {
                "boxes": torch.from_numpy(gt),
                "labels": torch.from_numpy(labels),
                "difficult": torch.from_numpy(difficult),
            }
        )
    return preds, targets


def run_cocoeval(preds: list[dict], targets: list[dict], n_classes: int) -> COCOeval:
    """pycocotools at IoU 0.5 (difficult boxes as crowd regions), maxDets 100, area range 'all'."""
    images, annotations, results = [], [], []
    for i, (pred, target) in enumerate(zip(preds, targets, strict=True), start=1):
        images.append({"id": i, "width": 320, "height": 320})
        for box, lab, diff in zip(
            target["boxes"].double().tolist(),
            target["labels"].tolist(),
            target["difficult"].tolist(),
            strict=True,
        ):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": lab + 1,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": int(diff),
                }
            )
        for box, score, lab in zip(
            pred["boxes"].double().tolist(),
            pred["scores"].double().tolist(),
            pred["labels"].tolist(),
            strict=True,
        ):
            results.append(
                {
                    "image_id": i,
                    "category_id": lab + 1,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "score": score,
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": k + 1, "name": str(k)} for k in range(n_classes)],
        }
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.iouThrs = np.array([0.5])
        ev.evaluate()
        ev.accumulate()
    return ev


def coco_raw_curves(ev: COCOeval, n_classes: int) -> dict[int, dict[str, Any]]:
    """Score-sorted TP/FP flags per class from pycocotools' per-image matches (area 'all', maxDets 100)."""
    n_img, n_area = len(ev.params.imgIds), len(ev.params.areaRng)
    out = {}
    for k in range(n_classes):
        entries = [ev.evalImgs[k * n_area * n_img + i] for i in range(n_img)]
        entries = [e for e in entries if e is not None]
        npig = int(sum((e["gtIgnore"] == 0).sum() for e in entries))
        if npig == 0:
            continue
        scores = np.concatenate([np.asarray(e["dtScores"][:100]) for e in entries])
        order = np.argsort(-scores, kind="mergesort")
        dtm = np.concatenate([e["dtMatches"][0, :100] for e in entries])[order]
        dtig = np.concatenate([e["dtIgnore"][0, :100] for e in entries])[order].astype(bool)
        tp, fp = (dtm > 0) & ~dtig, (dtm == 0) & ~dtig
        out[k] = {"tp": tp[~dtig], "fp": fp[~dtig], "npos": npig, "scores": scores[order][~dtig]}
    return out


def devkit_voc_ap(rec: np.ndarray, prec: np.ndarray, use_07_metric: bool) -> float:
    """``voc_ap`` of the VOC devkit's Python port (py-faster-rcnn / detectron2), restated."""
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def assert_same(a: Any, b: Any, exact: bool = True) -> None:
    """Equal metric outputs (tensors or dicts of tensors); NaN equals NaN."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key], exact)
        return
    tol = {"rtol": 0.0, "atol": 0.0} if exact else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b), equal_nan=True, **tol)


# ----------------------------------------------------------------------------- VOC AP50


@pytest.fixture(scope="module")
def voc_case() -> tuple[list, list, COCOeval]:
    preds, targets = make_detection_set(seed=0, n_images=40, difficult_frac=0.15)
    return preds, targets, run_cocoeval(preds, targets, 4)


def test_voc_pr_curve_matches_pycocotools(voc_case: tuple[list, list, COCOeval]) -> None:
    preds, targets, ev = voc_case
    metric = VOCDetectionAP()
    metric.update(preds, targets)
    ours, theirs = metric.curves(), coco_raw_curves(ev, 4)
    assert sorted(ours) == sorted(theirs) and len(ours) >= 3
    rec_thrs = ev.params.recThrs
    for k, curve in ours.items():
        np.testing.assert_array_equal(curve["tp"], theirs[k]["tp"])
        np.testing.assert_array_equal(curve["fp"], theirs[k]["fp"])
        assert curve["num_positives"] == theirs[k]["npos"]
        assert curve["tp"].any() and curve["fp"].any()
        # our curve, interpolated at 101 recall points the COCO way == pycocotools' precision array
        pr = np.maximum.accumulate(curve["precision"][::-1])[::-1]
        idx = np.searchsorted(curve["recall"], rec_thrs, side="left")
        q = np.where(idx < pr.size, pr[np.minimum(idx, pr.size - 1)], 0.0)
        np.testing.assert_allclose(q, ev.eval["precision"][0, :, k, 0, -1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(curve["recall"][-1], ev.eval["recall"][0, k, 0, -1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("ap_method", ["11point", "area"])
def test_voc_ap_equals_devkit_formula_on_pycocotools_matches(
    voc_case: tuple[list, list, COCOeval], ap_method: str
) -> None:
    preds, targets, ev = voc_case
    metric = VOCDetectionAP(ap_method=ap_method)
    for lo in range(0, len(preds), 7):  # several update calls
        metric.update(preds[lo : lo + 7], targets[lo : lo + 7])
    result = metric.compute()
    expected, mr = {}, []
    for k, c in coco_raw_curves(ev, 4).items():
        tp, fp = np.cumsum(c["tp"]).astype(float), np.cumsum(c["fp"]).astype(float)
        rec, prec = tp / c["npos"], tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        expected[k] = devkit_voc_ap(rec, prec, use_07_metric=ap_method == "11point")
        fppi = fp / len(preds)
        row = []
        for point in (0.01, 0.1, 1.0):
            reached = np.nonzero(fppi <= point)[0]
            row.append(1.0 - (rec[reached[-1]] if reached.size else 0.0))
        mr.append(row)
    assert result["classes"].tolist() == sorted(expected)
    np.testing.assert_allclose(
        result["ap50_per_class"].numpy(), [expected[k] for k in sorted(expected)], atol=1e-12
    )
    np.testing.assert_allclose(result["map50"].item(), np.mean(list(expected.values())), atol=1e-12)
    for j, point in enumerate((0.01, 0.1, 1)):
        np.testing.assert_allclose(result[f"mr@fppi={point}"].item(), np.mean(mr, axis=0)[j], atol=1e-12)


def test_coco_map_factory_equals_pycocotools_and_our_101_point_ap50() -> None:
    preds, targets = make_detection_set(seed=1, n_images=25, difficult_frac=0.0)
    ev = run_cocoeval(preds, targets, 4)
    with contextlib.redirect_stdout(io.StringIO()):
        ev_full = run_cocoeval(preds, targets, 4)
        ev_full.params.iouThrs = np.linspace(0.5, 0.95, 10)
        ev_full.evaluate()
        ev_full.accumulate()
        ev_full.summarize()
    ours = VOCDetectionAP()
    ours.update(preds, targets)
    ap101 = []
    for curve in ours.curves().values():
        pr = np.maximum.accumulate(curve["precision"][::-1])[::-1]
        idx = np.searchsorted(curve["recall"], ev.params.recThrs, side="left")
        ap101.append(np.where(idx < pr.size, pr[np.minimum(idx, pr.size - 1)], 0.0).mean())
    backends = ["pycocotools"]
    with contextlib.suppress(ImportError):
        import faster_coco_eval  # noqa: F401

        backends.append("faster_coco_eval")
    for backend in backends:
        metric = coco_map(backend=backend)
        tm_targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
        with contextlib.redirect_stdout(io.StringIO()):
            metric.update(preds, tm_targets)
            result = metric.compute()
        np.testing.assert_allclose(result["map"].item(), ev_full.stats[0], atol=1e-6)
        np.testing.assert_allclose(result["map_50"].item(), np.mean(ap101), atol=1e-6)


def test_voc_rules_on_derivable_cases() -> None:
    box = torch.tensor
    targets = [
        {
            "boxes": box([[0.0, 0, 10, 10], [6, 0, 16, 10], [40, 40, 50, 50]]),
            "labels": box([0, 0, 0]),
            "difficult": box([False, False, True]),
        }
    ]
    preds = [
        {
            # exact hit on A; then a box whose best IoU is A (taken) although B is free and >= 0.5:
            # VOC says FP (COCO would match B); two hits on the difficult box: dropped
            "boxes": box([[0.0, 0, 10, 10], [2, 0, 12, 10], [40, 40, 50, 50], [41, 40, 50, 50]]),
            "scores": box([0.9, 0.8, 0.7, 0.6]),
            "labels": box([0, 0, 0, 0]),
        }
    ]
    metric = VOCDetectionAP(ap_method="area")
    metric.update(preds, targets)
    curve = metric.curves()[0]
    assert curve["tp"].tolist() == [True, False] and curve["fp"].tolist() == [False, True]
    assert curve["num_positives"] == 2
    assert metric.compute()["map50"].item() == pytest.approx(0.5)
    # an IoU of exactly 0.5 matches (the devkit's >=)
    metric = VOCDetectionAP()
    metric.update(
        [{"boxes": box([[0.0, 0, 20, 10]]), "scores": box([1.0]), "labels": box([3])}],
        [{"boxes": box([[0.0, 0, 10, 10]]), "labels": box([3])}],
    )
    assert metric.compute()["map50"].item() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- MR^-2


def reference_mr(
    preds: list[dict], targets: list[dict], setup: str, max_dets: int = 1000, floor: float = 0.0
) -> float:
    """The CityPersons text, literally: plain Python loops, one detection and one box at a time."""
    (hmin, hmax), (vmin, vmax) = CITYPERSONS_SETUPS[setup]

    def overlap(d: list[float], g: list[float], over_det: bool) -> float:
        w = min(d[2], g[2]) - max(d[0], g[0])
        h = min(d[3], g[3]) - max(d[1], g[1])
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        d_area = (d[2] - d[0]) * (d[3] - d[1])
        return inter / d_area if over_det else inter / (d_area + (g[2] - g[0]) * (g[3] - g[1]) - inter)

    pooled, positives = [], 0
    for pred, target in zip(preds, targets, strict=True):
        gts = []
        ignore = target.get("ignore", torch.zeros(len(target["boxes"]), dtype=torch.bool)).tolist()
        for g, vis, ign in zip(
            target["boxes"].double().tolist(), target["visibility"].double().tolist(), ignore, strict=True
        ):
            height = g[3] - g[1]
            ignored = bool(ign) or height < hmin or height > hmax or vis < vmin or vis > vmax
            gts.append((g, ignored))
            positives += not ignored
        gts = [x for x in gts if not x[1]] + [x for x in gts if x[1]]
        dets = sorted(
            zip(pred["scores"].double().tolist(), pred["boxes"].double().tolist(), strict=True),
            key=lambda x: -x[0],
        )[:max_dets]
        dets = [d for d in dets if hmin / 1.25 <= d[1][3] - d[1][1] < hmax * 1.25]
        taken = [False] * len(gts)
        for score, d in dets:
            best, best_g, best_regular = 0.5, None, False
            for gi, (g, ignored) in enumerate(gts):
                if taken[gi]:
                    continue
                if best_regular and ignored:
                    break
                ov = overlap(d, g, over_det=ignored)
                if ov < best:
                    continue
                best, best_g, best_regular = ov, gi, not ignored
            if best_g is None:
                pooled.append((score, False))
            elif best_regular:
                taken[best_g] = True
                pooled.append((score, True))
    pooled.sort(key=lambda x: -x[0])
    tp = fp = 0
    curve = []
    for _, is_tp in pooled:
        tp, fp = tp + is_tp, fp + (not is_tp)
        curve.append((fp / len(preds), tp / positives))
    logs = []
    for k in range(9):
        point = 10.0 ** (-2 + 0.25 * k)
        recall = 0.0
        for fppi, rec in curve:
            if fppi <= point:
                recall = rec
        miss = max(1.0 - recall, floor)
        if miss == 0.0:
            return 0.0
        logs.append(math.log(miss))
    return math.exp(sum(logs) / len(logs))


def make_pedestrian_set(seed: int, n_images: int = 24) -> tuple[list[dict], list[dict]]:
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    for _ in range(n_images):
        n = rng.integers(0, 7)
        heights = rng.uniform(15, 160, n)
        x0, y0 = rng.uniform(0, 900, n), rng.uniform(0, 300, n)
        boxes = np.stack([x0, y0, x0 + 0.41 * heights, y0 + heights], 1).reshape(-1, 4)
        vis = rng.choice([0.1, 0.2, 0.4, 0.65, 0.8, 1.0], n)
        ignore = rng.random(n) < 0.15
        dets = []
        for b in boxes:
            size = np.array([b[2] - b[0], b[3] - b[1]] * 2)
            for _ in range(rng.integers(0, 3)):
                dets.append(b + rng.normal(0, 0.1, 4) * size)
        for _ in range(rng.integers(0, 5)):
            h = rng.uniform(20, 200)
            x, y = rng.uniform(0, 900), rng.uniform(0, 300)
            dets.append(np.array([x, y, x + 0.41 * h, y + h]))
        dets = np.asarray(dets, dtype=np.float32).reshape(-1, 4)
        dets[:, 2:] = np.maximum(dets[:, 2:], dets[:, :2] + 2)
        scores = torch.from_numpy(rng.random(len(dets)).astype(np.float32))
        preds.append({"boxes": torch.from_numpy(dets), "scores": scores})
        targets.append(
            {
                "boxes": torch.from_numpy(boxes.astype(np.float32)),
                "visibility": torch.from_numpy(vis),  # float64, as the official JSON annotations hold it
                "ignore": torch.from_numpy(ignore),
            }
        )
    return preds, targets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_miss_rate_equals_literal_implementation(seed: int) -> None:
    preds, targets = make_pedestrian_set(seed)
    for max_dets in (1000, 2):
        metric = LogAverageMissRate(max_dets=max_dets)
        metric.update(preds[:10], targets[:10])
        metric.update(preds[10:], targets[10:])
        result = metric.compute()
        for setup in CITYPERSONS_SETUPS:
            expected = reference_mr(preds, targets, setup, max_dets=max_dets)
            assert result[f"mr_{setup}"].item() == pytest.approx(expected, rel=1e-12, abs=1e-15), setup
    floored = LogAverageMissRate(floor=1e-10)
    floored.update(preds, targets)
    assert floored.compute()["mr_all"].item() == pytest.approx(
        reference_mr(preds, targets, "all", floor=1e-10), rel=1e-12
    )


def _people(heights: list[float], x_step: float = 100.0) -> torch.Tensor:
    return torch.tensor([[i * x_step, 10.0, i * x_step + 0.41 * h, 10.0 + h] for i, h in enumerate(heights)])


def test_miss_rate_setups_keep_boundary_visibilities() -> None:
    """Visibilities of exactly 0.65 and 0.2 are inside the setups whose bounds they are (inclusive, as
    CityPersons' evaluation defines them), although the metric keeps its states in float32."""
    visibility = [0.65, 0.2, 0.64, 0.66, 0.19]
    gt = _people([100.0] * len(visibility))
    target = {"boxes": gt, "visibility": torch.tensor(visibility)}
    metric = LogAverageMissRate(setups=["reasonable", "heavy", "all"])
    metric.update([{"boxes": gt.clone(), "scores": torch.linspace(0.9, 0.5, len(visibility))}], [target])
    positives = {name: curve["num_positives"] for name, curve in metric.curves().items()}
    assert (
        positives
        == {
            "reasonable": sum(v >= 0.65 for v in visibility),  # 0.65, 0.66
            "heavy": sum(0.2 <= v <= 0.65 for v in visibility),  # 0.65, 0.2, 0.64
            "all": sum(v >= 0.2 for v in visibility),
        }
        == {"reasonable": 2, "heavy": 3, "all": 4}
    )


def test_miss_rate_derivable_cases() -> None:
    gt = _people([80, 120, 60])
    target = {"boxes": gt, "visibility": torch.ones(3)}
    # perfect detector: recall 1 at every point -> MR 0 without a floor, the floor itself with one
    perfect = {"boxes": gt.clone(), "scores": torch.tensor([0.9, 0.8, 0.7])}
    for floor, expected in ((0.0, 0.0), (1e-10, 1e-10)):
        metric = LogAverageMissRate(setups=["reasonable"], floor=floor)
        metric.update([perfect] * 4, [target] * 4)
        assert metric.compute()["mr_reasonable"].item() == pytest.approx(expected, abs=1e-20)
    # all miss: detections far away, or none
    away = {"boxes": gt + 500.0, "scores": torch.tensor([0.9, 0.8, 0.7])}
    none = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0)}
    for pred in (away, none):
        metric = LogAverageMissRate(setups=["reasonable"])
        metric.update([pred] * 4, [target] * 4)
        assert metric.compute()["mr_reasonable"].item() == 1.0
    # 4 images, one hit on the first GT ranked above everything: recall 1/12 at every point
    one = {"boxes": gt[:1].clone(), "scores": torch.tensor([0.9])}
    metric = LogAverageMissRate(setups=["reasonable"])
    metric.update([one, none, none, none], [target] * 4)
    assert metric.compute()["mr_reasonable"].item() == pytest.approx(11 / 12, rel=1e-12)


def test_miss_rate_equal_iou_goes_to_the_later_box() -> None:
    # the first detection has IoU 9/11 with both boxes; the official loop keeps the later box, so
    # the second detection (IoU 0.54 with the first box only) is a true positive as well
    target = {"boxes": torch.tensor([[0.0, 0, 10, 100], [2, 0, 12, 100]]), "visibility": torch.ones(2)}
    pred = {"boxes": torch.tensor([[1.0, 0, 11, 100], [-3, 0, 7, 100]]), "scores": torch.tensor([0.9, 0.8])}
    metric = LogAverageMissRate(setups=["reasonable"])
    metric.update([pred], [target])
    assert metric.compute()["mr_reasonable"].item() == reference_mr([pred], [target], "reasonable") == 0.0


def test_miss_rate_ignored_regions_absorb_detections() -> None:
    region = torch.tensor([[300.0, 0, 700, 400]])
    gt = torch.cat([_people([100]), region])
    target = {"boxes": gt, "visibility": torch.ones(2), "ignore": torch.tensor([False, True])}
    inside = torch.tensor([[320.0 + 40 * i, 20, 360 + 40 * i, 120] for i in range(8)])  # fully inside: IoA 1
    tp = torch.tensor([[0.0, 10, 41, 110]])
    crowded = {
        "boxes": torch.cat([inside, tp]),
        "scores": torch.tensor([0.9 - 0.01 * i for i in range(8)] + [0.1]),
    }
    clean = {"boxes": tp, "scores": torch.tensor([0.1])}
    results = []
    for pred, tgt in ((crowded, target), (clean, target)):
        metric = LogAverageMissRate(setups=["reasonable"])
        metric.update([pred] * 2, [tgt] * 2)
        results.append(metric.compute()["mr_reasonable"].item())
    assert results[0] == results[1] == 0.0
    # without the ignore region the 8 detections are false positives ranked first: FPPI reaches 8
    # before the first true positive, so the recall is 0 at every reference point
    plain = {"boxes": gt[:1], "visibility": torch.ones(1)}
    metric = LogAverageMissRate(setups=["reasonable"])
    metric.update([crowded] * 2, [plain] * 2)
    assert metric.compute()["mr_reasonable"].item() == 1.0
    # a ground truth box outside the setup (too short) becomes ignored and absorbs its detection
    small = {"boxes": _people([100, 30]), "visibility": torch.ones(2)}
    dets = {"boxes": _people([100, 30]), "scores": torch.tensor([0.5, 0.9])}
    metric = LogAverageMissRate(setups=["reasonable"], expand=100.0)  # keep the 30-px detection
    metric.update([dets], [small])
    assert metric.compute()["mr_reasonable"].item() == 0.0


# ----------------------------------------------------------------------------- WIDER FACE


def official_wider_ap(preds: list[dict], targets: list[dict], lists: list[dict]) -> dict[str, float]:
    """The official Python evaluation (``evaluation.py``), transcribed; boxes already xyxy."""

    def bbox_overlaps(boxes: np.ndarray, query_boxes: np.ndarray) -> np.ndarray:
        overlaps = np.zeros((boxes.shape[0], query_boxes.shape[0]))
        for k in range(query_boxes.shape[0]):
            box_area = (query_boxes[k, 2] - query_boxes[k, 0] + 1) * (
                query_boxes[k, 3] - query_boxes[k, 1] + 1
            )
            for n in range(boxes.shape[0]):
                iw = min(boxes[n, 2], query_boxes[k, 2]) - max(boxes[n, 0], query_boxes[k, 0]) + 1
                if iw > 0:
                    ih = min(boxes[n, 3], query_boxes[k, 3]) - max(boxes[n, 1], query_boxes[k, 1]) + 1
                    if ih > 0:
                        ua = float(
                            (boxes[n, 2] - boxes[n, 0] + 1) * (boxes[n, 3] - boxes[n, 1] + 1)
                            + box_area
                            - iw * ih
                        )
                        overlaps[n, k] = iw * ih / ua
        return overlaps

    def image_eval(pred, gt, ignore, iou_thresh):
        pred_recall = np.zeros(pred.shape[0])
        recall_list = np.zeros(gt.shape[0])
        proposal_list = np.ones(pred.shape[0])
        overlaps = bbox_overlaps(pred[:, :4], gt)
        for h in range(pred.shape[0]):
            gt_overlap = overlaps[h]
            max_overlap, max_idx = gt_overlap.max(), gt_overlap.argmax()
            if max_overlap >= iou_thresh:
                if ignore[max_idx] == 0:
                    recall_list[max_idx] = -1
                    proposal_list[h] = -1
                elif recall_list[max_idx] == 0:
                    recall_list[max_idx] = 1
            r_keep_index = np.where(recall_list == 1)[0]
            pred_recall[h] = len(r_keep_index)
        return pred_recall, proposal_list

    def img_pr_info(thresh_num, pred_info, proposal_list, pred_recall):
        pr_info = np.zeros((thresh_num, 2)).astype("float")
        for t in range(thresh_num):
            thresh = 1 - (t + 1) / thresh_num
            r_index = np.where(pred_info[:, 4] >= thresh)[0]
            if len(r_index) == 0:
                pr_info[t, 0] = 0
                pr_info[t, 1] = 0
            else:
                r_index = r_index[-1]
                p_index = np.where(proposal_list[: r_index + 1] == 1)[0]
                pr_info[t, 0] = len(p_index)
                pr_info[t, 1] = pred_recall[r_index]
        return pr_info

    preds_np = [
        np.concatenate([p["boxes"].double().numpy(), p["scores"].double().numpy()[:, None]], 1) for p in preds
    ]
    max_score, min_score = 0, 1
    for v in preds_np:
        if len(v):
            max_score, min_score = max(np.max(v[:, -1]), max_score), min(np.min(v[:, -1]), min_score)
    for v in preds_np:
        if len(v):
            v[:, -1] = (v[:, -1] - min_score) / (max_score - min_score)
    aps = {}
    thresh_num = 1000
    for setting in ("easy", "medium", "hard"):
        count_face = 0
        pr_curve = np.zeros((thresh_num, 2)).astype("float")
        for pred_info, target, sub in zip(preds_np, targets, lists, strict=True):
            pred_info = pred_info[np.argsort(-pred_info[:, 4], kind="stable")]
            gt_boxes = target["boxes"].double().numpy()
            keep_index = sub[setting].numpy() + 1  # the .mat lists are 1-based
            count_face += len(keep_index)
            if len(gt_boxes) == 0 or len(pred_info) == 0:
                continue
            ignore = np.zeros(gt_boxes.shape[0])
            if len(keep_index) != 0:
                ignore[keep_index - 1] = 1
            pred_recall, proposal_list = image_eval(pred_info, gt_boxes, ignore, 0.5)
            pr_curve += img_pr_info(thresh_num, pred_info, proposal_list, pred_recall)
        with np.errstate(divide="ignore", invalid="ignore"):
            propose = pr_curve[:, 1] / pr_curve[:, 0]
        recall = pr_curve[:, 1] / count_face
        aps[setting] = devkit_voc_ap(recall, propose, use_07_metric=False)
    return aps


def make_face_set(seed: int, n_images: int = 12) -> tuple[list[dict], list[dict], list[dict]]:
    rng = np.random.default_rng(seed)
    preds, targets, lists = [], [], []
    for i in range(n_images):
        n = rng.integers(0 if i else 1, 9)
        size = rng.choice([6.0, 12.0, 25.0, 40.0, 70.0], n) * rng.uniform(0.8, 1.2, n)
        x0, y0 = rng.uniform(0, 400, n), rng.uniform(0, 400, n)
        boxes = np.stack([x0, y0, x0 + size, y0 + size * 1.2], 1).reshape(-1, 4)
        dets = [b + rng.normal(0, 0.1, 4) * (b[2] - b[0]) for b in boxes for _ in range(rng.integers(0, 3))]
        dets += [np.r_[xy, xy + rng.uniform(5, 50, 2)] for xy in rng.uniform(0, 400, (rng.integers(0, 5), 2))]
        dets = np.asarray(dets, dtype=np.float32).reshape(-1, 4)
        scores = torch.from_numpy(rng.uniform(0.02, 0.98, len(dets)).astype(np.float32))
        preds.append({"boxes": torch.from_numpy(dets), "scores": scores})
        target = {"boxes": torch.from_numpy(boxes.astype(np.float32))}
        targets.append(target)
        lists.append(subsets_by_height(target["boxes"], (30.0, 15.0, 8.0)))
    return preds, targets, lists


def test_wider_face_equals_official_code() -> None:
    preds, targets, lists = make_face_set(seed=0)
    expected = official_wider_ap(preds, targets, lists)
    by_height = WiderFaceAP(height_thresholds=(30.0, 15.0, 8.0))
    by_height.update(preds, targets)
    explicit = WiderFaceAP()  # lists given with the targets override the default thresholds
    explicit.update(preds[:5], [{**t, **s} for t, s in zip(targets[:5], lists[:5], strict=True)])
    explicit.update(preds[5:], [{**t, **s} for t, s in zip(targets[5:], lists[5:], strict=True)])
    for metric in (by_height, explicit):
        result = metric.compute()
        for setting, ap in expected.items():
            assert result[f"ap_{setting}"].item() == pytest.approx(ap, rel=1e-12, abs=1e-15)
    assert 0.05 < expected["hard"] < 0.95 and expected["easy"] != expected["hard"]
    # scores all above 1 in a narrow band: the official normalisation starts from min 1, max 0, which
    # crowds them into a few of the 1000 thresholds (plain min-max would spread them)
    shifted = [{**p, "scores": p["scores"] * 0.01 + 1.5} for p in preds]
    expected = official_wider_ap(shifted, targets, lists)
    metric = WiderFaceAP(height_thresholds=(30.0, 15.0, 8.0))
    metric.update(shifted, targets)
    result = metric.compute()
    for setting, ap in expected.items():
        assert result[f"ap_{setting}"].item() == pytest.approx(ap, rel=1e-12, abs=1e-15)


def test_wider_face_subsets_and_ignored_faces() -> None:
    boxes = torch.tensor([[0.0, 0, 60, 60], [100, 0, 140, 40], [200, 0, 212, 12], [300, 0, 305, 5]])
    subsets = subsets_by_height(boxes)
    assert {k: v.tolist() for k, v in subsets.items()} == {"easy": [0], "medium": [0, 1], "hard": [0, 1, 2]}
    with pytest.raises(ValueError):
        subsets_by_height(boxes, (10.0, 30.0, 50.0))
    # a detection on a face outside the setting is dropped, not a false positive
    metric = WiderFaceAP()
    metric.update([{"boxes": boxes[:2].clone(), "scores": torch.tensor([0.4, 0.9])}], [{"boxes": boxes}])
    result = metric.compute()
    assert result["ap_easy"].item() == pytest.approx(1.0)  # the 40-px hit is dropped in easy
    assert result["ap_medium"].item() == pytest.approx(1.0)
    assert result["ap_hard"].item() == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------- mIoU


def test_segmentation_miou_equals_confusion_matrix_references() -> None:
    rng = np.random.default_rng(0)
    num_classes = 6
    target = rng.integers(0, 5, (4, 17, 19))  # class 5 never in the targets
    target[rng.random(target.shape) < 0.1] = 255
    preds = np.where(rng.random(target.shape) < 0.6, target, rng.integers(0, 4, target.shape))
    preds[(preds == 255) | (preds == 4)] = 0
    # class 4 is in the targets but never predicted; class 5 appears nowhere (union 0)
    metric = SegmentationMIoU(num_classes=num_classes)
    for i in range(4):
        metric.update(torch.from_numpy(preds[i : i + 1]), torch.from_numpy(target[i : i + 1]))
    keep = target != 255
    t, p = target[keep], preds[keep]
    cm_np = np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)
    cm_sk = confusion_matrix(t, p, labels=list(range(num_classes)))
    np.testing.assert_array_equal(cm_np, cm_sk)
    np.testing.assert_array_equal(metric.confmat.numpy(), cm_np)
    with np.errstate(invalid="ignore"):
        iou = np.diag(cm_np) / (cm_np.sum(0) + cm_np.sum(1) - np.diag(cm_np))
    assert np.isnan(iou[5]) and iou[4] == 0.0
    assert metric.compute().item() == pytest.approx(np.nanmean(iou), rel=1e-6)
    np.testing.assert_allclose(metric.per_class_iou().numpy(), iou, rtol=1e-12)
    # logits give the same result as their argmax
    logits = torch.nn.functional.one_hot(torch.from_numpy(preds), num_classes).permute(0, 3, 1, 2).float()
    from_logits = SegmentationMIoU(num_classes=num_classes)
    from_logits.update(logits, torch.from_numpy(target))
    assert from_logits.compute().item() == metric.compute().item()


# ----------------------------------------------------------------------------- FPR@recall


def test_fpr_at_recall_equals_sklearn_roc_curve() -> None:
    rng = np.random.default_rng(0)
    n, c = 400, 5
    target = rng.integers(0, c - 1, n)  # the last class has no positives: left out
    logits = rng.normal(size=(n, c)) + 2.0 * np.eye(c)[target]
    logits = np.round(logits, 1)  # many tied scores
    metric = FPRAtRecall(num_classes=c)
    metric.update(torch.from_numpy(logits[:150]).float(), torch.from_numpy(target[:150]))
    metric.update(torch.from_numpy(logits[150:]).float(), torch.from_numpy(target[150:]))
    result = metric.compute()
    scores = torch.from_numpy(logits).float().double().numpy()
    for r in (0.9, 0.95, 0.99):
        fprs, logs = [], []
        for k in range(c - 1):
            fpr, tpr, _ = roc_curve(target == k, scores[:, k], drop_intermediate=False)
            value = fpr[tpr >= r].min()
            fprs.append(value)
            logs.append(-np.log10(max(value, 1.0 / (target != k).sum())))
        assert result[f"fpr@{r:g}"].item() == pytest.approx(np.mean(fprs), rel=1e-12)
        assert result[f"neglog10_fpr@{r:g}"].item() == pytest.approx(np.mean(logs), rel=1e-12)
    assert metric.per_class()["classes"].tolist() == [0, 1, 2, 3]
    # a separable class has FPR 0 and reads the floor
    separable = FPRAtRecall(num_classes=2, recalls=(0.9,), fpr_floor=1e-3)
    separable.update(torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]]), torch.tensor([0, 0, 1]))
    out = separable.compute()
    assert out["fpr@0.9"].item() == 0.0 and out["neglog10_fpr@0.9"].item() == pytest.approx(3.0)


# ----------------------------------------------------------------------------- depth


def bts_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """``compute_errors`` of BTS (``bts_eval.py``), restated."""
    thresh = np.maximum((gt / pred), (pred / gt))
    err = np.log(pred) - np.log(gt)
    return {
        "silog": np.sqrt(np.mean(err**2) - np.mean(err) ** 2) * 100,
        "log10": (np.abs(np.log10(gt) - np.log10(pred))).mean(),
        "abs_rel": np.mean(np.abs(gt - pred) / gt),
        "sq_rel": np.mean(((gt - pred) ** 2) / gt),
        "rmse": np.sqrt(((gt - pred) ** 2).mean()),
        "rmse_log": np.sqrt(((np.log(gt) - np.log(pred)) ** 2).mean()),
        "delta1": (thresh < 1.25).mean(),
        "delta2": (thresh < 1.25**2).mean(),
        "delta3": (thresh < 1.25**3).mean(),
    }


def test_depth_equals_bts_per_image_numpy() -> None:
    rng = np.random.default_rng(0)
    b, h, w, max_depth = 5, 37, 61, 80.0
    gt = rng.uniform(0.5, 90.0, (b, h, w))
    gt[rng.random(gt.shape) < 0.3] = 0.0  # invalid (no lidar return)
    pred = gt * rng.uniform(0.7, 1.3, gt.shape) + rng.normal(0, 1, gt.shape)
    pred[0, 0, :5] = [np.nan, np.inf, -np.inf, -3.0, 200.0]
    gt[4] = 0.0  # an image with no valid pixel: skipped
    metrics = DepthMetrics(max_depth=max_depth, crop="garg")
    rmse = DepthRMSE(max_depth=max_depth, crop="garg")
    for lo in (0, 2):
        hi = lo + 2 if lo == 0 else b
        for m in (metrics, rmse):
            m.update(torch.from_numpy(pred[lo:hi]).float()[:, None], torch.from_numpy(gt[lo:hi]).float())
    expected = []
    for i in range(b):
        p = pred[i].astype(np.float32).astype(np.float64)
        g = gt[i].astype(np.float32).astype(np.float64)
        p[np.isnan(p)] = 1e-3
        p[np.isinf(p) & (p > 0)] = max_depth
        p[np.isinf(p)] = 1e-3
        p = np.clip(p, 1e-3, max_depth)
        valid = (g > 1e-3) & (g < max_depth)
        crop = np.zeros_like(valid)
        crop[int(0.40810811 * h) : int(0.99189189 * h), int(0.03594771 * w) : int(0.96405229 * w)] = True
        valid &= crop
        if valid.any():
            expected.append(bts_errors(g[valid], p[valid]))
    result = metrics.compute()
    assert result["num_images"].item() == len(expected) == 4
    for key in expected[0]:
        assert result[key].item() == pytest.approx(np.mean([e[key] for e in expected]), rel=1e-9), key
    assert rmse.compute().item() == pytest.approx(result["rmse"].item(), rel=1e-15)
    assert garg_crop_mask(h, w).numpy().tolist() == crop.tolist()
    nyu = nyu_eigen_crop_mask()
    assert (
        nyu.sum().item() == (471 - 45) * (601 - 41) and nyu[45, 41] and not nyu[44, 41] and not nyu[45, 601]
    )


# ----------------------------------------------------------------------------- classification


def test_classification_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 6, 300)  # class 6 never a target...
    preds = np.where(rng.random(300) < 0.6, target, rng.integers(0, 7, 300))  # ... but predicted
    logits = torch.from_numpy(np.eye(7)[preds] + rng.normal(0, 0.01, (300, 7))).float()
    acc = classification_metric("accuracy", num_classes=7)
    mpca = classification_metric("mean_per_class_accuracy", num_classes=7)
    for m in (acc, mpca):
        m.update(logits[:100], torch.from_numpy(target[:100]))
        m.update(logits[100:], torch.from_numpy(target[100:]))
    assert acc.compute().item() == pytest.approx(accuracy_score(target, preds), rel=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = balanced_accuracy_score(target, preds)
    assert mpca.compute().item() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="unknown classification metric"):
        classification_metric("top5", num_classes=7)


# ----------------------------------------------------------------------------- distributed exactness


def metric_specs() -> dict[str, dict[str, Any]]:
    """Metric constructors and batches of update arguments, the same for every test below."""
    det_preds, det_targets = make_detection_set(seed=3, n_images=20, difficult_frac=0.1)
    ped_preds, ped_targets = make_pedestrian_set(seed=3, n_images=16)
    face_preds, face_targets, _ = make_face_set(seed=3, n_images=10)
    rng = np.random.default_rng(3)
    seg_t = torch.from_numpy(rng.integers(0, 4, (6, 9, 11)))
    seg_p = torch.from_numpy(rng.integers(0, 4, (6, 9, 11)))
    logits = torch.from_numpy(rng.normal(size=(60, 4))).float()
    labels = torch.from_numpy(rng.integers(0, 4, 60))
    depth_gt = torch.from_numpy(rng.uniform(0, 12, (6, 8, 10))).float()
    depth_pred = depth_gt + torch.from_numpy(rng.normal(0, 1, (6, 8, 10))).float()

    def chunks(*seqs: Any, size: int) -> list[list[Any]]:
        return [[s[i : i + size] for s in seqs] for i in range(0, len(seqs[0]), size)]

    return {
        "voc": {"cls": "VOCDetectionAP", "kwargs": {}, "batches": chunks(det_preds, det_targets, size=3)},
        "voc_area": {
            "cls": "VOCDetectionAP",
            "kwargs": {"ap_method": "area"},
            "batches": chunks(det_preds, det_targets, size=4),
        },
        # a single batch: the second process holds no data at all
        "voc_one_batch": {
            "cls": "VOCDetectionAP",
            "kwargs": {},
            "batches": chunks(det_preds[:5], det_targets[:5], size=5),
        },
        "mr": {"cls": "LogAverageMissRate", "kwargs": {}, "batches": chunks(ped_preds, ped_targets, size=3)},
        "wider": {
            "cls": "WiderFaceAP",
            "kwargs": {"height_thresholds": [30.0, 15.0, 8.0]},
            "batches": chunks(face_preds, face_targets, size=2),
        },
        "miou": {
            "cls": "SegmentationMIoU",
            "kwargs": {"num_classes": 4},
            "batches": chunks(seg_p, seg_t, size=2),
        },
        "fpr": {
            "cls": "FPRAtRecall",
            "kwargs": {"num_classes": 4},
            "batches": chunks(logits, labels, size=25),
        },
        "mpca": {
            "cls": "MeanPerClassAccuracy",
            "kwargs": {"num_classes": 4},
            "batches": chunks(logits, labels, size=25),
        },
        "depth": {
            "cls": "DepthMetrics",
            "kwargs": {"max_depth": 10.0},
            "batches": chunks(depth_pred, depth_gt, size=2),
        },
    }


def single_process_results(specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for name, spec in specs.items():
        metric = getattr(M, spec["cls"])(**spec["kwargs"])
        for batch in spec["batches"]:
            metric.update(*batch)
        out[name] = metric.compute()
    return out


def test_merge_state_of_halves_equals_one_metric() -> None:
    specs = metric_specs()
    whole = single_process_results(specs)
    for name, spec in specs.items():
        first = getattr(M, spec["cls"])(**spec["kwargs"])
        second = getattr(M, spec["cls"])(**spec["kwargs"])
        for i, batch in enumerate(spec["batches"]):
            (first if i % 2 == 0 else second).update(*batch)
        first.merge_state(second)
        assert_same(first.compute(), whole[name], exact=name != "depth")


def _worker(rank: int, world: int, folder: str, specs: dict[str, dict[str, Any]]) -> None:
    """One process of the gloo group: its interleaved share of every metric's batches, then compute."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    try:
        results = {}
        for name, spec in specs.items():
            metric = getattr(M, spec["cls"])(**spec["kwargs"])
            for batch in spec["batches"][rank::world]:  # DistributedSampler-style interleaving
                metric.update(*batch)
            results[name] = metric.compute()
        local = getattr(M, specs["voc"]["cls"])(sync_on_compute=False)
        for batch in specs["voc"]["batches"][rank::world]:
            local.update(*batch)
        results["voc_unsynced"] = local.compute()
        torch.save(results, f"{folder}/result{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.dist
def test_two_gloo_processes_equal_one(tmp_path: Path) -> None:
    specs = metric_specs()
    # fork: the children inherit the imported modules, so they start in milliseconds
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(rank, 2, str(tmp_path), specs)) for rank in range(2)]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join(timeout=120)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    assert all(proc.exitcode == 0 for proc in procs), [proc.exitcode for proc in procs]
    whole = single_process_results(specs)
    for rank in range(2):
        results = torch.load(tmp_path / f"result{rank}.pt", weights_only=True)
        for name in specs:
            assert_same(results[name], whole[name], exact=name != "depth")
        # the sync is what makes them equal: each process alone sees half the images
        assert results["voc_unsynced"]["map50"].item() != whole["voc"]["map50"].item()


def _to(value: Any, device: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to(v, device) for v in value)
    return value


@pytest.mark.gpu
def test_metrics_on_cuda_equal_cpu() -> None:
    specs = metric_specs()
    on_cpu = single_process_results(specs)
    for name, spec in specs.items():
        metric = getattr(M, spec["cls"])(**spec["kwargs"]).to("cuda")
        for batch in spec["batches"]:
            metric.update(*_to(batch, "cuda"))
        assert_same(_to(metric.compute(), "cpu"), on_cpu[name], exact=name != "depth")
