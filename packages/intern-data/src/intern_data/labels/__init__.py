"""The GV-D label system: concepts in a DAG, WordNet nouns, dataset mappings, merge modes, queries."""

from intern_data.labels.build import build_taxonomy
from intern_data.labels.mapping import LabelMapping, LabelMappingError, map_label_space
from intern_data.labels.merge import MODES, MergedLabels, merge_label_spaces
from intern_data.labels.queries import Query, generate_queries
from intern_data.labels.taxonomy import Concept, Taxonomy, TaxonomyError, format_concept, normalize_name
from intern_data.labels.wordnet import WordNet, WordNetNotFoundError, find_wordnet, load_wordnet, synset_id

__all__ = [
    "MODES",
    "Concept",
    "LabelMapping",
    "LabelMappingError",
    "MergedLabels",
    "Query",
    "Taxonomy",
    "TaxonomyError",
    "WordNet",
    "WordNetNotFoundError",
    "build_taxonomy",
    "find_wordnet",
    "format_concept",
    "generate_queries",
    "load_wordnet",
    "map_label_space",
    "merge_label_spaces",
    "normalize_name",
    "synset_id",
]
