"""French free-text matching: the sentence table (tests/rules/french_sentences.tsv) and the interface triage uses."""

import csv
from pathlib import Path

import pytest

from rules.french_text import ConceptMatcher, Mention, find_mentions, load_concept_labels, load_concepts

TABLE = Path(__file__).with_name("french_sentences.tsv")
CONCEPTS = load_concepts()


def _rows():
    with TABLE.open(encoding="utf-8") as handle:
        for row in csv.DictReader((line for line in handle if not line.startswith("#")), delimiter="\t"):
            yield pytest.param(row["sentence"], row["fires"], row["denied"], id=row["sentence"][:60])


def _ids(cell: str) -> set[str]:
    return {part.strip() for part in (cell or "").split(",") if part.strip()}


@pytest.mark.parametrize(("sentence", "fires", "denied"), list(_rows()))
def test_sentence_table(sentence, fires, denied):
    mentions = find_mentions(sentence, CONCEPTS, include_negated=True)
    assert {m.concept for m in mentions if not m.negated} == _ids(fires)
    assert _ids(denied) <= {m.concept for m in mentions if m.negated}


def test_table_is_large_and_balanced():
    rows = [row.values for row in _rows()]
    assert len(rows) >= 60
    assert sum(1 for _, fires, _ in rows if fires) >= 30  # positives
    assert sum(1 for _, _, denied in rows if denied) >= 20  # negated
    assert sum(1 for _, fires, denied in rows if not fires and not denied) >= 6  # unrelated


def test_negated_mentions_are_left_out_by_default():
    assert find_mentions("Pas de douleur thoracique.", CONCEPTS) == []
    [mention] = find_mentions("Pas de douleur thoracique.", CONCEPTS, include_negated=True)
    assert mention.negated


def test_mention_gives_concept_span_and_phrase():
    text = "Depuis hier soir, Mme D. a des douleurs thoraciques."
    [mention] = find_mentions(text, CONCEPTS)
    assert mention == Mention("douleur-thoracique", "douleur thoracique", 31, 51, "douleurs thoraciques")
    assert text[mention.start:mention.end] == mention.text


def test_caller_concepts_and_compiled_matcher_agree():
    concepts = {"toux": ["toux", "tousse"]}
    assert [m.concept for m in find_mentions("Il tousse beaucoup la nuit", concepts)] == ["toux"]
    assert ConceptMatcher(concepts).find("Il ne tousse plus") == []


def test_default_concepts_have_labels_and_phrases():
    labels = load_concept_labels()
    assert {"douleur-thoracique", "essoufflement", "malaise", "chute", "confusion", "perte-de-connaissance",
            "saignement", "idees-suicidaires"} <= set(CONCEPTS)
    assert set(labels) == set(CONCEPTS)
    assert labels["douleur-thoracique"] == "Douleur thoracique"


def test_broken_concept_file_says_what(tmp_path):
    path = tmp_path / "concepts.yaml"
    path.write_text("concepts:\n  chute:\n    label: Chute\n", encoding="utf-8")
    with pytest.raises(ValueError, match="chute"):
        load_concepts(path)


def test_empty_text():
    assert find_mentions("", CONCEPTS) == []
    assert find_mentions("...", CONCEPTS) == []


def test_an_exclusion_phrase_drops_the_mentions_inside_it():
    concepts = {"chute": ["chute", "!chute de cheveux"]}
    assert find_mentions("Chute de cheveux, mais pas de chute", concepts, include_negated=True) == [
        Mention("chute", "chute", 30, 35, "chute", negated=True)]
    assert [m.text for m in find_mentions("Une chute hier; chute de cheveux aussi", concepts)] == ["chute"]


def test_misspellings_stop_at_real_words_and_short_words():
    concepts = {"confusion": ["confusion"], "chute": ["chute"]}
    assert find_mentions("confusoin et confsion", concepts)[0].concept == "confusion"
    assert find_mentions("une contusion", concepts) == []
    assert find_mentions("il chante", concepts) == []  # short words must match exactly
