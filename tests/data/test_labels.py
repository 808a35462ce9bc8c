"""intern_data.labels: taxonomy DAG, WordNet parsing, dataset mappings, merge modes, queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intern_data.label_space import LabelSpace
from intern_data.labels import (
    Concept,
    LabelMappingError,
    Taxonomy,
    TaxonomyError,
    WordNet,
    WordNetNotFoundError,
    build_taxonomy,
    find_wordnet,
    format_concept,
    generate_queries,
    load_wordnet,
    map_label_space,
    merge_label_spaces,
)
from intern_data.labels.wordnet import parse_data_line

# -- a tiny WordNet: (name, lemmas, pointers as (symbol, target name or raw 'offset pos')), gloss) ----

FIXTURE = [
    (
        "entity",
        ["entity"],
        [("~", "animal"), ("~", "location"), ("~", "person"), ("~", "thing")],
        "that which is",
    ),
    (
        "animal",
        ["animal", "animate_being", "beast"],
        [("@", "entity"), ("~", "dog"), ("~", "cat"), ("~", "pet")],
        "a living organism",
    ),
    ("pet", ["pet"], [("@", "animal"), ("~", "dog"), ("~", "cat")], "a domesticated animal"),
    (
        "dog",
        ["dog", "domestic_dog", "Canis_familiaris"],
        [("@", "animal"), ("@", "pet"), ("~i", "lassie"), ("+", "01234567 v"), ("#m", "pet")],
        "a member of Canis",
    ),
    ("cat", ["cat", "true_cat"], [("@", "animal"), ("@", "pet")], "a feline"),
    ("lassie", ["Lassie"], [("@i", "dog")], "a famous collie"),
    ("location", ["location"], [("@", "entity"), ("~", "street")], "a point or extent in space"),
    ("street", ["street"], [("@", "location")], "a thoroughfare"),
    ("person", ["person", "individual"], [("@", "entity"), ("~", "cad")], "a human being"),
    ("cad", ["cad", "bounder", "dog"], [("@", "person")], "someone morally reprehensible"),
    ("thing", ["thing"] + [f"thing_{i}" for i in range(1, 11)], [("@", "entity"), ("~", "ball")], "a thing"),
    ("ball", ["ball"], [("@", "thing")], "a round object"),
]
HEADER = "  1 This software and database is being provided to you, the LICENSEE\n  2 fixture header\n"


def _line(offset: int, lemmas: list[str], pointers: list[str], gloss: str) -> str:
    words = " ".join(f"{w} 0" for w in lemmas)
    return (
        f"{offset:08d} 03 n {len(lemmas):02x} {words} {len(pointers):03d} {' '.join(pointers)} | {gloss}  \n"
    )


def write_wordnet(folder: Path) -> dict[str, str]:
    """Write data.noun and index.noun for FIXTURE; return name -> concept id."""

    # Offsets are 8 digits, so line lengths do not depend on them: lay out with zeros, then fill in.
    def pointers(spec: list[tuple[str, str]], where: dict[str, int]) -> list[str]:
        out = []
        for symbol, target in spec:
            if " " in target:
                offset, pos = target.split()
                out.append(f"{symbol} {offset} {pos} 0101")
            else:
                out.append(f"{symbol} {where[target]:08d} n 0000")
        return out

    zeros = dict.fromkeys((name for name, *_ in FIXTURE), 0)
    where: dict[str, int] = {}
    position = len(HEADER.encode())
    for name, lemmas, spec, gloss in FIXTURE:
        where[name] = position
        position += len(_line(0, lemmas, pointers(spec, zeros), gloss).encode())
    body = "".join(_line(where[n], lem, pointers(spec, where), g) for n, lem, spec, g in FIXTURE)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.noun").write_text(HEADER + body)
    senses: dict[str, list[str]] = {}
    for name, lemmas, *_ in FIXTURE:
        for lemma in lemmas:
            senses.setdefault(lemma.lower(), []).append(name)
    senses["dog"] = ["dog", "cad"]  # the most frequent sense first, as in WordNet
    index = "".join(
        f"{lemma} n {len(names)} 1 @ {len(names)} 0 {' '.join(f'{where[n]:08d}' for n in names)}  \n"
        for lemma, names in sorted(senses.items())
    )
    (folder / "index.noun").write_text(HEADER + index)
    return {name: f"wn:n{where[name]:08d}" for name in where}


@pytest.fixture
def wordnet_dir(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    ids = write_wordnet(tmp_path / "wordnet")
    return tmp_path / "wordnet", ids


# -- taxonomy ------------------------------------------------------------------------------------------


def small_taxonomy() -> Taxonomy:
    # Given children first on purpose: the constructor sorts parents before children.
    return Taxonomy(
        [
            Concept("x:terrier", "terrier", parents=("x:dog",)),
            Concept("x:dog", "dog", ("domestic dog", "hound"), ("x:mammal", "x:pet")),
            Concept("x:cat", "cat", ("house cat",), ("x:mammal", "x:pet")),
            Concept("x:mammal", "mammal", parents=("x:animal",)),
            Concept("x:pet", "pet", parents=("x:animal",)),
            Concept("x:animal", "animal", ("beast",), ("x:entity",)),
            Concept("x:car", "car", ("automobile", "auto"), ("x:vehicle",)),
            Concept("x:vehicle", "vehicle", parents=("x:entity",)),
            Concept("x:entity", "entity"),
            Concept("x:street", "street", parents=("x:entity",)),
            Concept("x:hound", "hound", parents=("x:dog",)),
        ]
    )


def test_taxonomy_hierarchy_queries() -> None:
    tax = small_taxonomy()
    assert len(tax) == 11
    assert tax.roots() == ["x:entity"]
    assert tax.ancestors("x:terrier") == {"x:dog", "x:mammal", "x:pet", "x:animal", "x:entity"}
    assert tax.descendants("x:animal") == {"x:dog", "x:cat", "x:mammal", "x:pet", "x:terrier", "x:hound"}
    assert tax.descendants("x:dog", include_self=True) == {"x:dog", "x:terrier", "x:hound"}
    assert tax.is_a("x:terrier", "x:pet") and tax.is_a("x:dog", "x:dog")
    assert not tax.is_a("x:animal", "x:dog") and not tax.is_a("x:car", "x:animal")
    assert set(tax.children("x:dog")) == {"x:terrier", "x:hound"}
    assert tax.depth("x:entity") == 0 and tax.depth("x:dog") == 3 and tax.depth("x:terrier") == 4
    # dog and cat share two lowest common ancestors in this DAG (mammal and pet): both are reported.
    assert set(tax.lowest_common_ancestors("x:dog", "x:cat")) == {"x:mammal", "x:pet"}
    assert tax.lowest_common_ancestor("x:dog", "x:cat") == "x:mammal"  # equal depth: smaller id
    assert tax.lowest_common_ancestor("x:terrier", "x:hound") == "x:dog"
    assert tax.lowest_common_ancestor("x:terrier", "x:dog") == "x:dog"
    assert tax.lowest_common_ancestor("x:terrier", "x:car") == "x:entity"
    assert Taxonomy([Concept("a", "a"), Concept("b", "b")]).lowest_common_ancestor("a", "b") is None


def test_taxonomy_find_and_resolve() -> None:
    tax = small_taxonomy()
    assert tax.find("Domestic_Dog") == ["x:dog"]
    assert tax.find("AUTO") == ["x:car"]
    assert tax.find("hound") == ["x:hound", "x:dog"]  # main-name matches before synonym matches
    assert tax.find("hound", synonyms=False) == ["x:hound"]
    assert tax.resolve("hound") == "x:hound" and tax.resolve("x:cat") == "x:cat"
    with pytest.raises(KeyError, match="unicorn"):
        tax.resolve("unicorn")
    tax.add(Concept("y:hound2", "hound", parents=("x:dog",)))
    with pytest.raises(KeyError, match="several concepts"):
        tax.resolve("hound")


def test_taxonomy_rejects_bad_graphs() -> None:
    with pytest.raises(TaxonomyError, match="unknown parents"):
        Taxonomy([Concept("a", "a", parents=("missing",))])
    with pytest.raises(TaxonomyError, match="cycle"):
        Taxonomy([Concept("a", "a", parents=("b",)), Concept("b", "b", parents=("a",))])
    with pytest.raises(TaxonomyError, match="twice"):
        Taxonomy([Concept("a", "a"), Concept("a", "a2")])
    tax = small_taxonomy()
    with pytest.raises(TaxonomyError, match="already"):
        tax.add(Concept("x:dog", "dog"))
    with pytest.raises(TaxonomyError, match="unknown parents"):
        tax.add(Concept("x:wolf", "wolf", parents=("x:canid",)))
    with pytest.raises(ValueError, match="itself"):
        Concept("a", "a", parents=("a",))


def test_taxonomy_json_round_trip(tmp_path: Path) -> None:
    tax = small_taxonomy()
    path = tax.save(tmp_path / "sub" / "taxonomy.json")
    loaded = Taxonomy.load(path)
    assert [c for c in loaded] == [c for c in tax]
    assert loaded.ancestors("x:terrier") == tax.ancestors("x:terrier")
    assert json.loads(path.read_text())["format"] == "intern-taxonomy"
    with pytest.raises(TaxonomyError, match="not a taxonomy"):
        Taxonomy.from_json({"concepts": []})
    with pytest.raises(FileNotFoundError, match="labels build"):
        Taxonomy.load(tmp_path / "nope.json")


def test_format_concept_and_subset() -> None:
    tax = small_taxonomy()
    text = format_concept(tax, "domestic dog")
    assert text.splitlines()[0] == "x:dog: dog"
    assert "domestic dog, hound" in text and "x:mammal (mammal)" in text
    assert "entity > animal > mammal > dog" in text
    sub = tax.subset(["x:terrier"])
    assert set(sub.ids) == {"x:terrier", "x:dog", "x:mammal", "x:pet", "x:animal", "x:entity"}


# -- WordNet -------------------------------------------------------------------------------------------


def test_parse_data_line_fields() -> None:
    line = (
        "02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 004 @ 02083346 n 0000 @i 01317541 n 0000 "
        "~ 02085374 n 0000 + 01234567 v 0101 | a member of the genus Canis  "
    )
    concept, children = parse_data_line(line)
    assert concept.id == "wn:n02084071"
    assert concept.name == "dog" and concept.synonyms == ("domestic dog", "Canis familiaris")
    assert concept.parents == ("wn:n02083346", "wn:n01317541")
    assert children == ("wn:n02085374",)
    assert concept.definition == "a member of the genus Canis"
    with pytest.raises(ValueError, match="not a WordNet noun synset line"):
        parse_data_line(
            "02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 004 @ 02083346 n 0000 | cut"
        )


def test_fixture_wordnet_full_parse(wordnet_dir: tuple[Path, dict[str, str]]) -> None:
    folder, ids = wordnet_dir
    tax = load_wordnet(folder)
    assert len(tax) == len(FIXTURE)
    dog = tax[ids["dog"]]
    assert dog.name == "dog" and dog.synonyms == ("domestic dog", "Canis familiaris")
    assert dog.parents == (ids["animal"], ids["pet"])  # '#m' and the verb pointer are not parents
    assert tax[ids["lassie"]].parents == (ids["dog"],)  # instance hypernym '@i'
    assert tax.is_a(ids["lassie"], ids["animal"]) and not tax.is_a(ids["cad"], ids["animal"])
    assert tax[ids["thing"]].synonyms[-1] == "thing 10"  # 11 lemmas: the count is hex ("0b")
    assert tax.roots() == [ids["entity"]]
    assert tax[ids["street"]].definition == "a thoroughfare"


def test_fixture_wordnet_subset_and_index(wordnet_dir: tuple[Path, dict[str, str]]) -> None:
    folder, ids = wordnet_dir
    wn = WordNet(folder)
    assert wn.lookup("dog") == (ids["dog"], ids["cad"])
    assert wn.resolve("dog.n.01") == ids["dog"] and wn.resolve("dog.n.02") == ids["cad"]
    assert wn.resolve(ids["dog"]) == ids["dog"] and wn.resolve(ids["dog"][4:]) == ids["dog"]
    with pytest.raises(KeyError, match="2 noun senses"):
        wn.resolve("dog.n.03")
    up = load_wordnet(folder, synsets=["dog.n.01"])
    assert set(up.ids) == {ids["dog"], ids["animal"], ids["pet"], ids["entity"]}
    down = load_wordnet(folder, synsets=["animal.n.01"], hyponyms=True)
    assert set(down.ids) == {ids[n] for n in ("entity", "animal", "pet", "dog", "cat", "lassie")}
    assert down[ids["dog"]] == load_wordnet(folder)[ids["dog"]]


def test_missing_wordnet_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(WordNetNotFoundError, match="wordnet-base"):
        find_wordnet(tmp_path)
    with pytest.raises(WordNetNotFoundError, match="INTERN_WORDNET_DIR"):
        load_wordnet(tmp_path / "empty")


def test_map_label_space_on_wordnet_senses(wordnet_dir: tuple[Path, dict[str, str]]) -> None:
    folder, ids = wordnet_dir
    tax, wn = load_wordnet(folder), WordNet(folder)
    space = LabelSpace("people", ("dog", "beast", "rascal"))
    m = map_label_space(tax, space)
    assert m.concepts == (ids["dog"], ids["animal"], None)
    assert m.ambiguous == {"dog": (ids["dog"], ids["cad"])}  # main name before the synonym of "cad"
    fixed = map_label_space(tax, space, {"dog": "dog.n.02", "rascal": "cad.n.01"}, wordnet=wn, strict=True)
    assert fixed.concepts == (ids["cad"], ids["animal"], ids["cad"])
    with pytest.raises(KeyError, match="2 noun senses"):
        map_label_space(tax, space, {"dog": "dog.n.07"}, wordnet=wn)


def test_build_taxonomy_with_extra_concepts(wordnet_dir: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, ids = wordnet_dir
    extra = [Concept("world:blob_dog", "blob dog", ("blobby",), (ids["dog"],))]
    tax = build_taxonomy(folder, synsets=["street.n.01"], extra=extra, out=tmp_path / "t.json")
    assert tax.is_a("world:blob_dog", ids["animal"]) and ids["street"] in tax
    assert Taxonomy.load(tmp_path / "t.json").ids == tax.ids
    alone = build_taxonomy(
        use_wordnet=False, extra=[Concept("w:a", "a"), Concept("w:b", "b", parents=("w:a",))]
    )
    assert alone.is_a("w:b", "w:a")


@pytest.mark.realdata
def test_installed_wordnet_dog_is_an_animal() -> None:
    wn = WordNet()
    dog, animal, cat = wn.resolve("dog.n.01"), wn.resolve("animal.n.01"), wn.resolve("cat.n.01")
    assert dog == "wn:n02084071" and animal == "wn:n00015388"
    tax = load_wordnet(synsets=[dog, cat])
    assert tax[dog].name == "dog" and "domestic dog" in tax[dog].synonyms
    assert tax.is_a(dog, animal) and not tax.is_a(animal, dog)
    assert tax[tax.lowest_common_ancestor(dog, cat)].name == "carnivore"
    assert tax.roots() == ["wn:n00001740"] and tax["wn:n00001740"].name == "entity"
    sub = load_wordnet(synsets=["canine.n.02"], hyponyms=True)
    assert dog in sub and tax.ancestors(dog) <= set(sub.ids)
    assert sub.is_a(wn.resolve("poodle.n.01"), dog) and not sub.is_a(wn.resolve("wolf.n.01"), dog)
    mapping = map_label_space(sub, LabelSpace("dogs", ("poodle", "Domestic_Dog", "wolf", "sofa")))
    assert mapping.concepts[:3] == (wn.resolve("poodle.n.01"), dog, wn.resolve("wolf.n.01"))
    assert mapping.unmapped == ("sofa",)


# -- dataset label mapping -----------------------------------------------------------------------------


def test_map_label_space_reports_unmapped_and_ambiguous() -> None:
    tax = small_taxonomy()
    tax.add(Concept("z:dog-food", "dog", parents=("x:entity",)))  # a second concept named "dog"
    space = LabelSpace("pets", ("Dog", "house_cat", "auto", "background", "unicorn"))
    m = map_label_space(tax, space)
    assert m.concepts == ("x:dog", "x:cat", "x:car", None, None)
    assert m.unmapped == ("background", "unicorn")
    assert m.ambiguous == {"Dog": ("x:dog", "z:dog-food")}
    report = m.report()
    assert "3/5 classes mapped" in report and "'unicorn'" in report and "ambiguous: 'Dog'" in report
    with pytest.raises(LabelMappingError, match="unicorn"):
        map_label_space(tax, space, strict=True)
    explicit = map_label_space(
        tax, space, {"Dog": "x:dog", "unicorn": "beast", "background": None}, strict=True
    )
    assert explicit.concepts == ("x:dog", "x:cat", "x:car", None, "x:animal")
    assert explicit.explicit == ("Dog", "background", "unicorn")
    with pytest.raises(KeyError, match="not in label space"):
        map_label_space(tax, space, {"zebra": "x:animal"})
    with pytest.raises(KeyError, match="griffin"):
        map_label_space(tax, space, {"unicorn": "griffin"})


# -- merge modes ---------------------------------------------------------------------------------------


def three_datasets() -> list:
    """A: dog/cat/car; B: hound (a dog subclass)/domestic dog (= A's dog)/auto (= car)/street;
    C: animal (ancestor of all pets)/vehicle/sky (unmapped) -- overlapping and hierarchical."""
    tax = small_taxonomy()
    a = map_label_space(tax, LabelSpace("A", ("dog", "cat", "car")))
    b = map_label_space(tax, LabelSpace("B", ("hound", "domestic dog", "auto", "street")))
    c = map_label_space(tax, LabelSpace("C", ("animal", "vehicle", "sky")))
    assert c.unmapped == ("sky",)
    return [a, b, c]


def test_merge_natural_keeps_one_head_per_dataset() -> None:
    merged = merge_label_spaces(three_datasets(), "natural")
    assert [s.name for s in merged.spaces] == ["A", "B", "C"]
    assert merged.head("B").classes == ("hound", "domestic dog", "auto", "street")
    assert merged.index_maps == {"A": (0, 1, 2), "B": (0, 1, 2, 3), "C": (0, 1, 2)}
    assert merged.per_dataset_softmax and merged.target("B", 2) == 2
    assert merged.logit_index("C") == (0, 1, 2)


def test_merge_unified_merges_equivalent_concepts_only() -> None:
    datasets = three_datasets()
    merged = merge_label_spaces(datasets, "unified")
    (space,) = merged.spaces
    assert space.name == "unified"
    # A's dog == B's domestic dog, A's car == B's auto; hound, animal, vehicle stay their own classes.
    assert space.classes == ("dog", "cat", "car", "hound", "street", "animal", "vehicle", "C/sky")
    assert merged.index_maps == {"A": (0, 1, 2), "B": (3, 0, 2, 4), "C": (5, 6, 7)}
    assert (
        merged.concepts["unified"][:3] == ("x:dog", "x:cat", "x:car")
        and merged.concepts["unified"][7] is None
    )
    assert not merged.per_dataset_softmax
    assert merged.target("B", 1) == 0 and merged.logit_index("B") == tuple(range(8))
    # Independent check: every class lands on the unified class of its concept (or its own name).
    for m in datasets:
        for i, (name, concept) in enumerate(zip(m.space.classes, m.concepts, strict=True)):
            j = merged.index_maps[m.dataset][i]
            expected = (
                merged.concepts["unified"].index(concept) if concept else space.classes.index(f"C/{name}")
            )
            assert j == expected
    # Hierarchy is kept, not collapsed: the unified space reports which classes subsume others.
    overlaps = merged.overlaps(small_taxonomy())
    assert ("unified", "hound", "dog") in overlaps and ("unified", "dog", "animal") in overlaps
    assert ("unified", "car", "vehicle") in overlaps and ("unified", "cat", "animal") in overlaps
    assert all(broad != "street" for *_, broad in overlaps)


def test_merge_partial_shares_equivalent_outputs_but_keeps_label_spaces() -> None:
    unified = merge_label_spaces(three_datasets(), "unified")
    partial = merge_label_spaces(three_datasets(), "partial")
    (bank,) = partial.spaces
    assert bank.name == "partial" and bank.classes == unified.spaces[0].classes
    assert partial.index_maps == unified.index_maps
    assert partial.per_dataset_softmax
    # B's loss covers only B's classes (in B's order), with B's own labels as targets.
    assert partial.logit_index("B") == (3, 0, 2, 4) and partial.target("B", 1) == 1
    shared = set(partial.logit_index("A")) & set(partial.logit_index("B"))
    assert {bank.classes[i] for i in shared} == {"dog", "car"}
    assert not set(partial.logit_index("C")) & set(partial.logit_index("A"))
    # Round trip through JSON.
    from intern_data.labels import MergedLabels

    assert MergedLabels.from_json(json.loads(json.dumps(partial.to_json()))) == partial


def test_merge_rejects_bad_input() -> None:
    datasets = three_datasets()
    with pytest.raises(ValueError, match="unknown merge mode"):
        merge_label_spaces(datasets, "union")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="more than once"):
        merge_label_spaces([datasets[0], datasets[0]], "natural")
    tax = small_taxonomy()
    doubled = map_label_space(tax, LabelSpace("D", ("dog", "domestic dog")))
    with pytest.raises(ValueError, match="several classes onto one concept"):
        merge_label_spaces([doubled], "unified")
    with pytest.raises(KeyError, match="not merged"):
        merge_label_spaces(datasets, "partial").head("Z")


def test_merge_disambiguates_equal_names_of_different_concepts() -> None:
    tax = Taxonomy([Concept("bird:crane", "crane"), Concept("machine:crane", "crane")])
    a = map_label_space(tax, LabelSpace("birds", ("crane",)), {"crane": "bird:crane"})
    b = map_label_space(tax, LabelSpace("sites", ("crane",)), {"crane": "machine:crane"})
    merged = merge_label_spaces([a, b], "unified")
    assert merged.spaces[0].classes == ("crane [bird:crane]", "crane [machine:crane]")


# -- queries -------------------------------------------------------------------------------------------


def test_classification_queries_one_concept_with_synonyms() -> None:
    tax = small_taxonomy()
    queries = generate_queries(tax, ["dog", "x:car"])
    assert [q.text for q in queries] == ["dog", "domestic dog", "hound", "car", "automobile", "auto"]
    assert {q.concepts for q in queries} == {("x:dog",), ("x:car",)}
    assert all(q.kind == "classification" for q in queries)
    plain = generate_queries(tax, ["dog", "x:car"], synonyms=False)
    assert [q.text for q in plain] == ["dog", "car"]
    capped = generate_queries(
        tax, ["x:car"], max_synonyms=1, expand=lambda w: [f"{w} (es)"] if w == "car" else []
    )
    assert [q.text for q in capped] == ["car", "automobile", "car (es)"]


def test_detection_queries_pair_concepts_deterministically() -> None:
    tax = small_taxonomy()
    kwargs = {"scenes": ["street"], "partners": ["car", "cat", "animal", "terrier"], "pairs_per_concept": 2}
    first = generate_queries(tax, ["dog"], "detection", synonyms=False, seed=3, **kwargs)
    again = generate_queries(tax, ["dog"], "detection", synonyms=False, seed=3, **kwargs)
    assert first == again and len(first) == 2
    for q in first:
        common, partner = q.concepts
        assert common == "x:dog" and partner in {"x:street", "x:car", "x:cat"}  # never animal or terrier
        assert q.text == f"dog {tax[partner].name}"
    seeds = {
        tuple(q.text for q in generate_queries(tax, ["dog"], "detection", seed=s, **kwargs)) for s in range(8)
    }
    assert len(seeds) > 1  # the seed matters
    expanded = generate_queries(tax, ["dog"], "detection", seed=3, **kwargs)
    partners = {q.concepts[1] for q in first}
    assert {q.concepts[1] for q in expanded} == partners
    n_names = {"x:street": 1, "x:car": 3, "x:cat": 2}
    assert len(expanded) == sum(3 * n_names[p] for p in partners)  # dog has 3 names
    assert "domestic dog street" in {q.text for q in expanded} or "x:street" not in partners
    everything = generate_queries(tax, ["dog", "cat"], "detection", synonyms=False, pairs_per_concept=5)
    assert {q.text for q in everything} == {"dog cat", "cat dog"}  # default partners: the other concepts
    with pytest.raises(ValueError, match="scenes or partners"):
        generate_queries(tax, ["dog"], "detection", partners=[])
    with pytest.raises(ValueError, match="unknown query kind"):
        generate_queries(tax, ["dog"], "segmentation")  # type: ignore[arg-type]
