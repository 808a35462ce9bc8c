"""``python -m intern_data labels|split|shard ...``: the data tools that take files, not configs.

``python -m intern_data data=<dataset>`` (no sub-command) is the Hydra app that writes a configured
dataset's shards; these sub-commands work on explicit paths and names.
"""

import argparse
import sys
from pathlib import Path

from .labels.build import build_taxonomy
from .labels.queries import generate_queries
from .labels.taxonomy import Taxonomy, TaxonomyError, format_concept
from .labels.wordnet import WordNet, WordNetNotFoundError

SUBCOMMANDS = ("labels",)


def _taxonomy(path: Path | None, refs: list[str]) -> tuple[Taxonomy, list[str]]:
    """A saved taxonomy, or the WordNet closure of ``refs`` (``dog.n.01``, ``wn:n...``, a lemma)."""
    if path is not None:
        taxonomy = Taxonomy.load(path)
        return taxonomy, [taxonomy.resolve(r) for r in refs]
    wordnet = WordNet()
    ids = [wordnet.resolve(r) for r in refs]
    return build_taxonomy(synsets=ids), ids


def cmd_labels_build(args: argparse.Namespace) -> None:
    taxonomy = build_taxonomy(synsets=args.synsets or None, hyponyms=args.hyponyms, out=args.out)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m intern_data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    labels = commands.add_parser("labels", help="the concept hierarchy (WordNet nouns + dataset labels)")
    actions = labels.add_subparsers(dest="action", required=True)

    build = actions.add_parser("build", help="write the taxonomy (all WordNet nouns, or a closure) as JSON")
    build.add_argument("--out", type=Path, required=True)
    build.add_argument("--synsets", nargs="*", help="only these synsets and their ancestors (dog.n.01 ...)")
    build.add_argument("--hyponyms", action="store_true", help="with --synsets, add their descendants")
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
    return parser


def main(argv: list[str]) -> int:
    """Run one sub-command; known input problems end with one line on stderr and exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (TaxonomyError, WordNetNotFoundError, KeyError, ValueError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"intern_data {args.command}: {message}", file=sys.stderr)
        return 2
    return 0
