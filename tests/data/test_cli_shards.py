"""``python -m intern_data shard`` and ``split`` on scikit-learn's digits."""

import json

from intern_data.cli import main
from intern_data.readers import open_reader
from intern_data.shards import labelled_keys, load_index
from intern_data.splits import SplitManifest


def test_shard_then_split_round_trip(tmp_path, capsys) -> None:
    out = tmp_path / "digits"
    assert main(["shard", "digits", "--out", str(out)]) == 0
    index = load_index(out)
    reader = open_reader("digits", None, "train")
    assert index["splits"]["train"]["count"] == len(reader)
    assert index["label_space"]["classes"] == list(reader.label_space.classes)
    assert [k for k, _ in labelled_keys(out, "train")] == [s["__key__"] for s in reader]

    assert main(["split", str(out), "--rule", "10pct", "--rule", "4shot", "--test-split", "test"]) == 0
    table = capsys.readouterr().out
    assert "| digits | 10 | 1,438 | 359 | 10pct |" in table
    manifest = SplitManifest.load(out / "splits" / "digits" / "4shot-seed0.json")
    labels = dict(labelled_keys(out, "train"))
    per_class = [sum(labels[k] == c for k in manifest.keys) for c in range(10)]
    assert per_class == [4] * 10


def test_split_refuses_changed_source(tmp_path, capsys) -> None:
    out = tmp_path / "digits"
    main(["shard", "digits", "--out", str(out), "--split", "train"])
    assert main(["split", str(out), "--rule", "10pct"]) == 0
    path = out / "splits" / "digits" / "10pct-seed0.json"
    manifest = json.loads(path.read_text())
    manifest["source_hash"] = "0" * len(manifest["source_hash"])
    path.write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["split", str(out), "--rule", "10pct"]) == 2
    assert "digits" in capsys.readouterr().err


def test_unknown_reader_is_rejected(capsys) -> None:
    try:
        main(["shard", "nosuch", "--out", "x"])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err


def test_reader_options_are_passed_and_checked(tmp_path, capsys) -> None:
    out = tmp_path / "digits"
    assert (
        main(["shard", "digits", "--out", str(out), "--split", "train", "--option", "test_fraction=0.5"]) == 0
    )
    expected = len(open_reader("digits", None, "train", test_fraction=0.5))
    assert load_index(out)["splits"]["train"]["count"] == expected < len(open_reader("digits", None, "train"))
    assert main(["shard", "digits", "--out", str(tmp_path / "x"), "--option", "scale=kitti"]) == 2
    assert "reader 'digits' has no option(s) scale; its options:" in capsys.readouterr().err
