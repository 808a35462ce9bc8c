"""``python -m intern_data labels|split|shard ...``: the data tools that take files, not configs.

``python -m intern_data data=<dataset>`` (no sub-command) is the Hydra app that writes a configured
dataset's shards; these sub-commands work on explicit paths and names.
"""

import argparse
import sys
from pathlib import Path

import yaml

from .imaging import MAX_PIXELS
from .labels.build import build_taxonomy
from .labels.queries import generate_queries
from .labels.taxonomy import Taxonomy, TaxonomyError, format_concept
from .labels.wordnet import WordNet, WordNetNotFoundError
from .labels.world import world_concepts
from .readers import READERS, ReaderError, open_reader
from .shards import ShardWriteError, labelled_keys, load_index, write_shards
from .shards.codec import IMAGE_FORMATS
from .splits import SplitMismatchError, load_or_make_split, manifest_path, split_statistics, statistics_table

VERB_HELP = {
    "shard": "convert a dataset in its native format to shards",
    "split": "percentage-shot / N-shot manifests of a shard folder",
    "labels": "the concept hierarchy (WordNet nouns + dataset labels): build, show, queries",
}
STANDARD_RULES = ("10pct", "20pct", "40pct", "80pct", "100pct", "1shot", "2shot", "4shot", "8shot")


def _taxonomy(path: Path | None, refs: list[str]) -> tuple[Taxonomy, list[str]]:
    """A saved taxonomy, or the WordNet closure of ``refs`` (``dog.n.01``, ``wn:n...``, a lemma)."""
    if path is not None:
        taxonomy = Taxonomy.load(path)
        return taxonomy, [taxonomy.resolve(r) for r in refs]
    wordnet = WordNet()
    ids = [wordnet.resolve(r) for r in refs]
    return build_taxonomy(synsets=ids), ids


def cmd_labels_build(args: argparse.Namespace) -> None:
    extra = world_concepts(WordNet()) if args.world else []
    taxonomy = build_taxonomy(synsets=args.synsets or None, hyponyms=args.hyponyms, extra=extra, out=args.out)
    print(f"{len(taxonomy)} concepts, {len(taxonomy.roots())} root(s) -> {args.out}")


def cmd_labels_show(args: argparse.Namespace) -> None:
    taxonomy, ids = _taxonomy(args.taxonomy, args.concepts)
    print("\n\n".join(format_concept(taxonomy, cid) for cid in ids))


def cmd_labels_queries(args: argparse.Namespace) -> None:
    taxonomy, ids = _taxonomy(args.taxonomy, args.concepts + args.scenes)
    queries = generate_queries(
        taxonomy,
        ids[: len(args.concepts)],
        args.kind,
        scenes=ids[len(args.concepts) :],
        pairs_per_concept=args.pairs,
        seed=args.seed,
    )
    print("\n".join(q.text for q in queries))


def cmd_shard(args: argparse.Namespace) -> None:
    """Convert one dataset, split by split, into webdataset shards with an index.json."""
    options = {}
    for option in args.options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise ReaderError(f"--option {option!r} is not KEY=VALUE")
        quote = f"quote a string in the shell: --option '{key}=\"{value}\"'"
        try:
            options[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ReaderError(
                f"--option {option!r}: the value is read as YAML and is not valid YAML; {quote}"
            ) from None
        if isinstance(options[key], dict) and None in options[key].values():
            # `{split}` unquoted is a YAML mapping with an empty value, never a reader setting
            raise ReaderError(
                f"--option {option!r}: the value reads as a YAML mapping with empty values; {quote}"
            )
    for split in args.splits:
        reader = open_reader(args.reader, args.root, split, skip_corrupt=args.skip_corrupt, **options)
        reader.max_pixels = args.max_pixels
        index = write_shards(
            reader,
            args.out,
            reader.source,
            split,
            label_space=reader.label_space,
            max_shard_bytes=args.max_shard_mb << 20,
            image_format=args.image_format,
        )
        info = index["splits"][split]
        skipped = f", {reader.skipped} corrupt skipped" if reader.skipped else ""
        print(f"{reader.source}/{split}: {info['count']} samples in {len(info['shards'])} shards{skipped}")
    print(f"-> {args.out}")


def cmd_split(args: argparse.Namespace) -> None:
    """Draw (or reuse) percentage-shot and N-shot manifests of a shard folder's training split."""
    items = labelled_keys(args.shards, args.source_split)
    dataset = load_index(args.shards)["dataset"]
    out = args.out or Path(args.shards) / "splits"
    test_size = sum(1 for _ in labelled_keys(args.shards, args.test_split)) if args.test_split else None
    rows = []
    for rule in args.rules or STANDARD_RULES:
        path = manifest_path(out, dataset, rule, args.seed)
        manifest = load_or_make_split(path, items, rule, seed=args.seed, dataset=dataset)
        rows.append(split_statistics(manifest, test_size))
        print(f"{rule}: {len(manifest.keys)} samples -> {path}")
    print(statistics_table(rows))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m intern_data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    labels = commands.add_parser("labels", help=VERB_HELP["labels"])
    actions = labels.add_subparsers(dest="action", required=True)

    build = actions.add_parser("build", help="write the taxonomy (all WordNet nouns, or a closure) as JSON")
    build.add_argument("--out", type=Path, required=True)
    build.add_argument("--synsets", nargs="*", help="only these synsets and their ancestors (dog.n.01 ...)")
    build.add_argument("--hyponyms", action="store_true", help="with --synsets, add their descendants")
    build.add_argument(
        "--no-world", dest="world", action="store_false", help="leave out the embedded world's categories"
    )
    build.set_defaults(func=cmd_labels_build)

    show = actions.add_parser("show", help="a concept with its synonyms, parents and children")
    show.add_argument("concepts", nargs="+", help="dog.n.01, wn:n02084071 or a name")
    show.add_argument("--taxonomy", type=Path, help="a file from `labels build` (default: WordNet)")
    show.set_defaults(func=cmd_labels_show)

    queries = actions.add_parser("queries", help="search queries for concepts (paper section 3)")
    queries.add_argument("concepts", nargs="+")
    queries.add_argument("--kind", choices=("classification", "detection"), default="classification")
    queries.add_argument("--scenes", nargs="*", default=[], help="(detection) scene concepts to pair with")
    queries.add_argument("--pairs", type=int, default=2, help="(detection) partners per concept")
    queries.add_argument("--seed", type=int, default=0)
    queries.add_argument("--taxonomy", type=Path)
    queries.set_defaults(func=cmd_labels_queries)

    shard = commands.add_parser("shard", help=VERB_HELP["shard"])
    shard.add_argument("reader", choices=sorted(READERS), metavar="READER", help=", ".join(sorted(READERS)))
    shard.add_argument("root", type=Path, nargs="?", help="dataset folder (not needed for packaged data)")
    shard.add_argument("--out", type=Path, required=True)
    shard.add_argument("--split", dest="splits", action="append", help="repeatable (default: train, test)")
    shard.add_argument(
        "--image-format",
        choices=IMAGE_FORMATS,
        default="keep",
        help="keep: store PNG and JPEG files as they are, other images as PNG; jpg, png: encode every "
        "image so (default: keep)",
    )
    shard.add_argument("--max-shard-mb", type=int, default=128)
    shard.add_argument("--skip-corrupt", action="store_true", help="skip and count unreadable images")
    shard.add_argument(
        "--max-pixels",
        type=int,
        default=MAX_PIXELS,
        help=f"refuse images over this many pixels before decoding them (default {MAX_PIXELS:.0e})",
    )
    shard.add_argument(
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a reader option, repeatable; the value is read as YAML (--option scale=kitti)",
    )
    shard.set_defaults(func=cmd_shard, splits=None)

    split = commands.add_parser("split", help=VERB_HELP["split"])
    split.add_argument("shards", type=Path, help="a folder written by `shard` or the data app")
    split.add_argument("--rule", dest="rules", action="append", help="10pct, 4shot, ... (default: all)")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--source-split", default="train")
    split.add_argument("--test-split", default=None, help="count this split as the test set in the table")
    split.add_argument("--out", type=Path, default=None, help="manifest folder (default: SHARDS/splits)")
    split.set_defaults(func=cmd_split)
    return parser


def main(argv: list[str]) -> int:
    """Run one sub-command; known input problems end with one line on stderr and exit code 2."""
    args = build_parser().parse_args(argv)
    if args.command == "shard" and args.splits is None:
        args.splits = ["train", "test"]
    try:
        args.func(args)
    except (
        TaxonomyError,
        WordNetNotFoundError,
        ReaderError,
        ShardWriteError,
        SplitMismatchError,
        KeyError,
        ValueError,
        FileNotFoundError,
    ) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"intern_data {args.command}: {message}", file=sys.stderr)
        return 2
    return 0
