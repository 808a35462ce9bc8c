"""intern_data.splits: GV-B percentage-shot and N-shot manifests, reuse, refusal, statistics."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from intern_data.splits import (
    STANDARD_RULES,
    SplitManifest,
    SplitMismatchError,
    SplitRule,
    load_or_make_split,
    make_nshot_split,
    make_percentage_split,
    make_split,
    make_standard_splits,
    manifest_path,
    split_statistics,
    statistics_table,
)

# Long-tailed class sizes, including classes under 10 images (10% of them rounds down to 0).
CLASS_SIZES = {0: 120, 1: 57, 2: 30, 3: 19, 4: 10, 5: 9, 6: 3, 7: 1}


def items(sizes: dict[int, int] = CLASS_SIZES) -> list[tuple[str, int]]:
    out = [(f"c{label}-img{i:04d}", label) for label, n in sizes.items() for i in range(n)]
    random.Random(0).shuffle(out)
    return out


def test_rule_parsing_and_rounding() -> None:
    assert str(SplitRule.parse("10%")) == "10pct" == str(SplitRule.parse("10pct"))
    assert str(SplitRule.parse("12.5pct")) == "12.5pct"
    assert str(SplitRule.parse("4-shot")) == "4shot" == str(SplitRule.parse("4shot"))
    for bad in ("0pct", "101%", "1.5shot", "ten", "0shot"):
        with pytest.raises(ValueError):
            SplitRule.parse(bad)
    # Exact rounding down, including where float arithmetic would err (0.7 * 100 / 100 style).
    for n in range(0, 300):
        for p in (10, 20, 40, 80, 100):
            assert SplitRule.parse(f"{p}pct").take(n) == n * p // 100
    assert SplitRule.parse("70pct").take(10) == 7  # float: 10 * 0.7 = 7.000000000000001 -> still 7
    assert SplitRule.parse("30pct").take(10) == 3  # 10 * 0.3 = 3.0000000000000004 (float) -> 3
    assert SplitRule.parse("4shot").take(3) == 3 and SplitRule.parse("4shot").take(30) == 4


@pytest.mark.parametrize("percent", [10, 20, 40, 80, 100])
def test_percentage_split_follows_the_paper_rule(percent: int) -> None:
    data = items()
    m = make_percentage_split(data, percent, seed=7, dataset="toy")
    label_of = dict(data)
    for label, n in CLASS_SIZES.items():
        assert m.class_counts[label] == math.floor(n * percent / 100)
        assert sum(label_of[k] == label for k in m.keys) == m.class_counts[label]
    assert len(set(m.keys)) == len(m.keys) and set(m.keys) <= set(label_of)
    assert m.source_counts == CLASS_SIZES
    if percent == 10:
        assert m.zero_classes == (5, 6, 7)  # 9, 3 and 1 images: the paper's rule gives 0
    if percent == 100:
        assert set(m.keys) == set(label_of) and m.zero_classes == ()


def test_selection_is_the_first_part_of_a_per_class_seeded_shuffle() -> None:
    data = items()
    ten, twenty, eighty = (make_percentage_split(data, p, seed=1) for p in (10, 20, 80))
    assert set(ten.keys) <= set(twenty.keys) <= set(eighty.keys)  # nested: same shuffle, longer prefix
    one, four = make_nshot_split(data, 1, seed=1), make_nshot_split(data, 4, seed=1)
    assert set(one.keys) <= set(four.keys)
    # The order of the input does not matter, the seed does.
    assert make_percentage_split(list(reversed(data)), 20, seed=1).keys == twenty.keys
    assert make_percentage_split(data, 20, seed=2).keys != twenty.keys
    # Adding a class does not change the draws of the others (each class has its own generator).
    more = make_percentage_split(data + [(f"new{i}", 99) for i in range(50)], 20, seed=1)
    assert [k for k in more.keys if not k.startswith("new")] == list(twenty.keys)
    # A shuffle is uniform-ish: over 200 seeds, every image of class 1 (57) gets picked for 10% (5) sometimes.
    picked = {
        k for s in range(200) for k in make_percentage_split(data, 10, seed=s).keys if k.startswith("c1-")
    }
    assert len(picked) == CLASS_SIZES[1]


def test_nshot_split_and_short_classes() -> None:
    m = make_nshot_split(items(), 8, seed=0, dataset="toy")
    assert m.rule == "8shot"
    assert m.class_counts == {c: min(8, n) for c, n in CLASS_SIZES.items()}
    assert m.short_classes == (6, 7)
    assert make_nshot_split(items(), 1).class_counts == dict.fromkeys(CLASS_SIZES, 1)


def test_num_classes_records_absent_classes_and_bad_input_is_rejected() -> None:
    m = make_split([("a", 0), ("b", 0), ("c", 2)], "100pct", num_classes=4)
    assert m.class_counts == {0: 2, 1: 0, 2: 1, 3: 0} and m.zero_classes == (1, 3)
    with pytest.raises(ValueError, match="more than once"):
        make_split([("a", 0), ("a", 1)], "10pct")
    with pytest.raises(ValueError, match="non-negative ints"):
        make_split([("a", -1)], "10pct")
    with pytest.raises(ValueError, match="num_classes"):
        make_split([("a", 5)], "10pct", num_classes=3)


def test_manifest_file_round_trip_and_hashes(tmp_path: Path) -> None:
    m = make_percentage_split(items(), 40, seed=3, dataset="toy")
    path = m.save(tmp_path / "m.json")
    data = json.loads(path.read_text())
    assert data["dataset"] == "toy" and data["rule"] == "40pct" and data["seed"] == 3
    assert data["num_keys"] == len(m) and len(data["keys_hash"]) == 64 and len(data["source_hash"]) == 64
    assert SplitManifest.load(path) == m
    data["keys"] = data["keys"][1:]  # a hand-edited or truncated manifest
    path.write_text(json.dumps(data))
    with pytest.raises(SplitMismatchError, match="damaged"):
        SplitManifest.load(path)


def test_load_or_make_reuses_and_refuses_to_redraw(tmp_path: Path) -> None:
    data = items()
    path = manifest_path(tmp_path, "toy", "10%", seed=5)
    assert path == tmp_path / "toy" / "10pct-seed5.json"
    made = load_or_make_split(path, data, "10pct", seed=5, dataset="toy")
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    reused = load_or_make_split(path, list(reversed(data)), "10%", seed=5, dataset="toy")
    assert reused == made and path.stat().st_mtime_ns == stamp  # same file, not rewritten
    changed = [*data[:-1], (data[-1][0], (data[-1][1] + 1) % 8)]  # one label changed
    with pytest.raises(SplitMismatchError, match="source data .* changed"):
        load_or_make_split(path, changed, "10pct", seed=5, dataset="toy")
    with pytest.raises(SplitMismatchError, match="source data"):
        load_or_make_split(path, [*data, ("extra", 0)], "10pct", seed=5, dataset="toy")
    with pytest.raises(SplitMismatchError, match=r"seed 5 \(asked for 6\)"):
        load_or_make_split(path, data, "10pct", seed=6, dataset="toy")
    with pytest.raises(SplitMismatchError, match="rule '10pct'"):
        load_or_make_split(path, data, "20pct", seed=5, dataset="toy")
    with pytest.raises(SplitMismatchError, match="dataset 'toy'"):
        load_or_make_split(path, data, "10pct", seed=5, dataset="other")
    assert SplitManifest.load(path) == made  # refusals left the file alone


def test_standard_splits_and_statistics_table(tmp_path: Path) -> None:
    manifests = make_standard_splits(tmp_path, items(), "toy", seed=0)
    assert [m.rule for m in manifests] == list(STANDARD_RULES)
    assert len(list((tmp_path / "toy").glob("*.json"))) == len(STANDARD_RULES)
    assert make_standard_splits(tmp_path, items(), "toy", seed=0) == manifests
    stats = split_statistics(manifests[0], test_size=1234)
    counts = [n * 10 // 100 for n in CLASS_SIZES.values()]
    assert stats.classes == 8 and stats.train_size == sum(CLASS_SIZES.values()) and stats.test_size == 1234
    assert stats.avg == pytest.approx(sum(counts) / 8) and stats.min == 0 and stats.max == 12
    assert stats.split_size == sum(counts) and stats.zero_classes == (5, 6, 7)
    table = statistics_table([stats, split_statistics(manifests[4])])
    lines = table.splitlines()
    assert lines[0].startswith("| Dataset | Classes | Train size | Test size |") and len(lines) == 4
    assert (
        lines[2] == f"| toy | 8 | 249 | 1,234 | 10pct | {sum(counts)} | {sum(counts) / 8:.1f} | 0 | 12 | 3 |"
    )
    assert lines[3] == "| toy | 8 | 249 | - | 100pct | 249 | 31.1 | 1 | 120 | 0 |"
