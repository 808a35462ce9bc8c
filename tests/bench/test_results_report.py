"""GV-B results on disk and the reports made from them: Table 1, gain bars, regime curves, t-SNE."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from intern_bench.report import NoResultsError, render_report, report_main, tsne_plot
from intern_bench.report.bars import gain_figure
from intern_bench.report.curves import curve_figure
from intern_bench.report.selection import NothingToDraw, columns, prepare
from intern_bench.report.tables import pivot, to_html, to_markdown
from intern_bench.report.tsne import tsne_embedding
from intern_bench.results import (
    BenchResult,
    ResultFileError,
    latest,
    load_results,
    metric_higher_is_better,
    save,
)

BASE, UPG, MN = "ImageNet R50", "Up-G R50", "Up-G MN-B4"
TASKS = {  # task -> (type, metric, higher is better, protocol)
    "cls_a": ("classification", "accuracy", True, "linear_probe"),
    "cls_b": ("classification", "accuracy", True, "linear_probe"),
    "depth": ("depth", "rmse", False, "frozen_dense"),
    "seg": ("segmentation", "miou", True, "frozen_dense"),
}


def make(
    model: str, task: str, split: str, value: float, created: str = "2024-05-01T12:00:00+00:00"
) -> BenchResult:
    task_type, metric, higher, protocol = TASKS[task]
    return BenchResult(
        model=model,
        model_fingerprint=f"fp-{model}",
        task=task,
        task_type=task_type,
        split=split,
        split_hash=f"sh-{task}-{split}",
        seed=0,
        protocol=protocol,
        metrics={metric: value, "extra": 1.0},
        primary_metric=metric,
        higher_is_better=higher,
        config={"model": {"name": model}, "task": {"name": task}},
        created=created,
        duration_s=1.5,
    )


def synthetic() -> list[BenchResult]:
    """Table-1-like numbers, a stale older run, percent and shot regimes for cls_a, seg at one regime."""
    table = {
        (BASE, "10pct"): {"cls_a": 62.8, "cls_b": 50.0, "depth": 0.48, "seg": 58.0},
        (BASE, "100pct"): {"cls_a": 73.0, "cls_b": 60.0, "depth": 0.43},
        (UPG, "10pct"): {"cls_a": 74.3, "cls_b": 55.1, "depth": 0.39, "seg": 66.2},
        (UPG, "100pct"): {"cls_a": 80.0, "cls_b": 65.0, "depth": 0.36},
        (MN, "10pct"): {"cls_a": 78.6, "cls_b": 52.0, "depth": 0.40},
        (MN, "100pct"): {"cls_b": 70.0},
    }
    out = [make(m, t, s, v) for (m, s), row in table.items() for t, v in row.items()]
    out.append(make(UPG, "cls_a", "10pct", 99.9, created="2024-04-01T00:00:00+00:00"))  # older: ignored
    for i, split in enumerate(["20pct", "40pct", "80pct", "1shot", "2shot", "4shot", "8shot"]):
        out.append(make(BASE, "cls_a", split, 40.0 + i))
        out.append(make(UPG, "cls_a", split, 50.0 + i))
    return out


def write_tree(root: Path, results: list[BenchResult]) -> None:
    for i, result in enumerate(results):
        save(result, root / result.task / result.model.replace(" ", "_") / f"run{i:03d}")


def markdown_rows(text: str) -> dict[str, dict[str, str]]:
    """The first Markdown table of ``text`` as {model: {header: cell}}."""
    text = "\n" + text
    block = text[text.index("\n|") + 1 :]
    lines = block[: block.find("\n\n")].splitlines()
    split = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    header, rows = split[0], split[2:]
    assert all(len(row) == len(header) for row in rows)
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def test_result_round_trip(tmp_path: Path) -> None:
    result = make(UPG, "depth", "10pct", 0.39)
    path = save(result, tmp_path / "a" / "b")
    assert path == tmp_path / "a" / "b" / "result.json"
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]  # no temporary file left
    assert load_results(tmp_path) == [result]
    assert load_results(path) == [result]
    assert load_results(tmp_path)[0].value == 0.39


def test_result_written_before_precision_and_devices_were_recorded_still_loads(tmp_path: Path) -> None:
    result = make(UPG, "cls_a", "10pct", 70.0)
    old = {k: v for k, v in result.to_json().items() if k not in ("precision", "devices")}
    (tmp_path / "result.json").write_text(json.dumps(old))
    (loaded,) = load_results(tmp_path)
    assert (loaded.precision, loaded.devices) == ("32-true", 1) and loaded == result
    (tmp_path / "result.json").write_text(json.dumps(old | {"devices": "2"}))
    with pytest.raises(ResultFileError, match="field 'devices' should be int"):
        load_results(tmp_path)


def test_result_checks_primary_metric_and_directions() -> None:
    with pytest.raises(ValueError, match="primary metric 'miou'"):
        BenchResult("m", "fp", "t", "segmentation", "10pct", "h", 0, "p", {"acc": 1.0}, "miou", True)
    assert metric_higher_is_better("accuracy") and metric_higher_is_better("map50")
    assert not any(metric_higher_is_better(m) for m in ("rmse", "mr2", "fpr@0.95", "abs_rel"))


@pytest.mark.parametrize(
    "text",
    ["{not json", "[1, 2]", json.dumps({"model": "m"}), "seed-as-text"],
    ids=["syntax", "not-object", "missing-fields", "wrong-type"],
)
def test_malformed_result_error_names_the_file(tmp_path: Path, text: str) -> None:
    save(make(BASE, "cls_a", "10pct", 60.0), tmp_path / "good")
    bad = tmp_path / "bad" / "result.json"
    bad.parent.mkdir()
    if text == "seed-as-text":
        data = make(BASE, "cls_a", "10pct", 60.0).to_json() | {"seed": "zero"}
        text = json.dumps(data)
    bad.write_text(text)
    with pytest.raises(ResultFileError, match=re.escape(str(bad))):
        load_results(tmp_path)


def test_latest_keeps_the_newest_per_model_task_split_protocol() -> None:
    old = make(UPG, "cls_a", "10pct", 70.0, created="2024-05-01T12:00:00+00:00")
    new = make(UPG, "cls_a", "10pct", 71.0, created="2024-05-01T13:00:00+01:00")  # 12:00 UTC: a tie
    newest = make(UPG, "cls_a", "10pct", 72.0, created="2024-05-02T00:00:00")
    other = make(UPG, "cls_a", "100pct", 80.0, created="2024-01-01T00:00:00+00:00")
    assert latest([newest, old, other, new]) == [newest, other]
    assert latest([old, new]) == [new]  # same moment: the later one in the list


def test_markdown_table_places_values_and_bolds_the_best() -> None:
    table = pivot(synthetic(), first_model=BASE)
    assert [c.task for c in table.columns] == ["cls_a", "cls_b", "seg", "depth"]  # Table 1's type order
    assert table.models == (BASE, MN, UPG)
    rows = markdown_rows(to_markdown(table))
    assert list(rows) == [BASE, MN, UPG]
    expected = {
        BASE: ["62.8", "73.0", "50.0", "60.0", "58.0", "–", "0.480", "0.430", "56.9", "–"],
        MN: ["**78.6**", "–", "52.0", "**70.0**", "–", "–", "0.400", "–", "–", "–"],
        UPG: [
            "74.3",
            "**80.0**",
            "**55.1**",
            "65.0",
            "**66.2**",
            "–",
            "**0.390**",
            "**0.360**",
            "**65.2**",
            "–",
        ],
    }
    header = [
        "cls_a ↑ 10pct",
        "cls_a ↑ 100pct",
        "cls_b ↑ 10pct",
        "cls_b ↑ 100pct",
        "seg ↑ 10pct",
        "seg ↑ 100pct",
    ]
    header += ["depth ↓ 10pct", "depth ↓ 100pct", "Average ↑ 10pct", "Average ↑ 100pct"]
    for model, cells in expected.items():
        assert [rows[model][h] for h in header] == cells, model
    # The average is over the three higher-is-better columns; at 100% no model has seg.
    assert table.averages[(UPG, "10pct")] == pytest.approx((74.3 + 55.1 + 66.2) / 3)


def test_table_and_html_escape_names() -> None:
    nasty = "<script>alert(1)</script> & A|B *x*"
    results = [make(nasty, "cls_a", "10pct", 60.0), make(BASE, "cls_a", "10pct", 61.0)]
    page = to_html(pivot(results), title="<GV-B>")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; A|B *x*" in page
    assert "<title>&lt;GV-B&gt;</title>" in page and page.startswith("<!DOCTYPE html>")
    assert "<td><b>61.0</b></td>" in page
    rows = markdown_rows(to_markdown(pivot(results)))
    assert rows[BASE]["cls_a ↑ 10pct"] == "**61.0**"
    assert r"&lt;script&gt;alert(1)&lt;/script&gt; & A\|B \*x\*" in rows


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50


def test_gain_bars_and_curves_axes() -> None:
    results = synthetic()
    assert len(gain_figure(results, BASE).axes) == 2  # left: accuracy/mIoU gains, right: RMSE reduction
    assert len(gain_figure([r for r in results if r.task == "cls_a"], BASE).axes) == 1
    with pytest.raises(NothingToDraw, match="no result at split 8shot"):
        gain_figure([r for r in results if r.model != BASE or r.split != "8shot"], BASE, split="8shot")
    by_task = {c.task: c for c in columns(prepare(results))}
    assert len(curve_figure(results, by_task["cls_a"]).axes) == 2  # percent panel + shot panel
    assert len(curve_figure(results, by_task["depth"]).axes) == 1
    with pytest.raises(NothingToDraw, match=r"only one data regime \(10pct\)"):
        curve_figure(results, by_task["seg"])


def test_render_report_writes_what_the_results_support(tmp_path: Path) -> None:
    write_tree(tmp_path / "runs", synthetic())
    out = tmp_path / "report"
    written = render_report(tmp_path / "runs", out, baseline=BASE)
    names = [p.name for p in written]
    assert names == [
        "bars.png",
        "curves_cls_a.png",
        "curves_cls_b.png",
        "curves_depth.png",
        "report.md",
        "report.html",
    ]
    for path in written[:-2]:
        assert_png(path)
    text = (out / "report.md").read_text()
    assert "seg: only one data regime (10pct), no curve" in text
    assert "![gains over ImageNet R50 at 10pct](bars.png)" in text
    assert markdown_rows(text)[UPG]["cls_a ↑ 10pct"] == "74.3"  # the newest run, not the stale 99.9
    assert '<img src="curves_cls_a.png"' in (out / "report.html").read_text()

    written = render_report(tmp_path / "runs", out)  # no baseline: no chart, and the old one is gone
    assert "bars.png" not in [p.name for p in written] and not (out / "bars.png").exists()
    assert "No baseline model given (--baseline MODEL)" in (out / "report.md").read_text()


def test_report_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path / "runs", [make(BASE, "cls_a", "10pct", 60.0), make(UPG, "cls_a", "10pct", 70.0)])
    assert report_main([str(tmp_path / "runs"), "--baseline", UPG]) == 0
    assert (tmp_path / "runs" / "report" / "report.md").is_file()
    assert_png(tmp_path / "runs" / "report" / "bars.png")
    assert str(tmp_path / "runs" / "report" / "report.html") in capsys.readouterr().out

    empty = tmp_path / "empty"
    empty.mkdir()
    assert report_main([str(empty), "--out", str(tmp_path / "o")]) == 2
    assert f"no result.json files under {empty}" in capsys.readouterr().err
    with pytest.raises(NoResultsError, match=re.escape(str(tmp_path / "missing"))):
        render_report(tmp_path / "missing", tmp_path / "o")
    assert report_main([str(tmp_path / "runs"), "--baseline", "nobody"]) == 2
    assert "baseline model 'nobody'" in capsys.readouterr().err


def test_tsne_keeps_separated_blobs_apart(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(0.0, 1.0, (60, 32)), rng.normal(4.0, 1.0, (60, 32))])
    labels = np.repeat([0, 1], 60)
    points = tsne_embedding(features, seed=0)
    assert points.shape == (120, 2)
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    nearest = labels[distances.argmin(axis=1)]
    assert (nearest == labels).mean() > 0.95  # leave-one-out 1-NN in the 2-D map
    np.testing.assert_array_equal(points, tsne_embedding(features, seed=0))  # fixed seed: same map

    path = tsne_plot(
        torch.from_numpy(features), torch.from_numpy(labels), ["car", "bus"], "blobs", tmp_path / "t.png"
    )
    assert_png(path)


def test_down_a_methods_sit_side_by_side_with_mf_fd_scores_and_its_image_grid(tmp_path: Path) -> None:
    results = []
    for seed, (lp, ft, mf) in enumerate([(30.0, 28.0, 34.0), (32.0, 30.0, 36.0)]):
        for protocol, value in (("lp", lp), ("ft", ft), ("mf", mf)):
            result = dataclasses.replace(
                make(UPG, "cls_a", "10pct", value), protocol=protocol, split_seed=seed
            )
            if protocol == "mf":
                result.metrics.update(fd_original=8.0 + seed, fd_reconstructed=4.0)
            results.append(result)
    write_tree(tmp_path / "results", results)
    grid = tmp_path / "results" / "cell" / "transfer" / "reconstructions.png"
    grid.parent.mkdir(parents=True)
    grid.write_bytes(b"png")
    render_report(tmp_path / "results", tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    methods = text[text.index("## Transfer methods") :]
    row = markdown_rows(methods)[UPG]
    assert (row["LP (accuracy)"], row["FT (accuracy)"]) == ("31.0 ± 1.41", "29.0 ± 1.41")
    assert row["MF (accuracy)"] == "**35.0 ± 1.41**" and (row["FD orig."], row["FD rec."]) == (
        "8.50 ± 0.707",
        "4.00 ± 0.000",
    )
    assert (tmp_path / "report" / "reconstructions_0.png").read_bytes() == b"png"
