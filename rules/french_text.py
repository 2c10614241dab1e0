"""French free-text matching for complaints: which alarming concepts a patient's words mention, and which they deny.

Pure functions, no I/O but :func:`load_concepts` (which reads the YAML concept list). The triage engine calls::

    concepts = load_concepts()                       # rules/complaint_concepts.yaml: {concept id: [French phrases]}
    for mention in find_mentions(text, concepts):    # negated mentions are left out
        mention.concept, mention.phrase, mention.start, mention.end, mention.text

``find_mentions(text, concepts, include_negated=True)`` also returns the denied ones, flagged ``negated=True``
(for explaining why a text did *not* fire). Compile once with :class:`ConceptMatcher` when the same concepts
are matched many times; ``find_mentions`` caches the compiled matcher for a concepts mapping it has seen.

Matching, word by word, tolerates:
- accents and case ("Essoufflée", "ESSOUFFLEE"), ligatures (œ), curly apostrophes;
- plurals and feminine forms ("douleurs thoraciques", "tombée"), doubled letters ("essouflé");
- common misspellings: one edit in words of 6 to 8 letters, two in longer ones ("douleur thoracic"), never on
  the first letter, never for a real word that merely looks close (``NOT_TYPOS``: "contusion" is not "confusion")
  nor for a word of another phrase ("confusion" is not a misspelt "convulsion");
- phrases marked ``!`` in a concept's list say what its words mean elsewhere: "!chute de cheveux" keeps
  "une chute de cheveux" from being a fall;
- little words between a phrase's words ("perte brutale de connaissance" for "perte de connaissance"): up to
  ``MAX_GAP`` words, within one clause.

Negation (a mention is negated when a cue governs it in its clause):
- cues before the mention: pas, ne ... plus, jamais, aucun(e), sans, ni, non, nie/nié, absence de, and "plus de"
  opening a clause; "pas de douleur thoracique", "n'est plus essoufflé", "aucune chute", "sans malaise",
  "ni douleur ni malaise", "nie toute douleur thoracique", "pas de fièvre, ni d'essoufflement";
- ne ... pas/plus around it: "il ne tombe plus", "il ne s'est pas évanoui";
- answers after it in the same clause: "douleur thoracique : non", "essoufflement absent", "chutes : 0";
- a cue's scope ends at punctuation and at conjunctions ("elle n'a pas mangé mais elle a une douleur
  thoracique" fires), except a list that goes on ("pas de fièvre, de malaise ou de chute": all three denied);
  doubt is no denial ("je ne sais pas si c'est une douleur thoracique" fires);
- what says a complaint is over, after it: "le saignement s'est arrêté", "la confusion a disparu";
- words that look like negation but are not: "pas d'amélioration de son essoufflement", "sans cesse",
  "pas seulement", "pas mal de douleurs", "jamais été aussi essoufflée", "non soulagée", "n'arrête pas de
  saigner", "plus de douleurs qu'hier": these fire.
When in doubt the matcher fires: a false alert costs a coordinator a minute, a missed one can cost more.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rapidfuzz.distance import Levenshtein

DEFAULT_CONCEPTS_PATH = Path(__file__).with_name("complaint_concepts.yaml")

EXCLUSION = "!"  # a phrase so marked names what the concept's words mean elsewhere ("!chute de cheveux")
MAX_GAP = 2  # words other than little ones allowed between two words of a phrase
MAX_SKIP = 6  # words of any kind allowed there
SCOPE = 8  # words a negation cue reaches forward within its clause

# Function words dropped from phrases: "mal à la poitrine" is matched as mal ... poitrine.
STOPWORDS = frozenset(
    "a au aux d de des du en dans sur sous par pour avec l la le les un une j je il elle on me m se s "
    "mon ma mes son sa ses ton ta tes y est sont ai as a avait ete tres".split()
)
# Real French words one edit away from a concept word, which are not misspellings of it.
NOT_TYPOS = frozenset("contusion confession conclusion concession poitrail".split())

BOUNDARY_WORDS = frozenset(
    "mais et ou car donc puis sauf hormis excepte cependant pourtant toutefois neanmoins alors sinon "
    "que qu quand lorsque lorsqu puisque puisqu parce depuis apres avant tandis pendant surtout si pourquoi comment"
    .split()
)
BOUNDARY_CHARS = re.compile(r"[.,;:!?()\[\]{}\n\r|•/]|\s[-–—]\s|[–—]")
# After a cue, these mean the cue is not denying what follows.
PSEUDO_AFTER_CUE = frozenset(
    "amelioration ameliore amelioree ameliorer mieux diminution diminue soulagement soulage soulagee regression "
    "disparition cesse arret arrete doute seulement que qu uniquement compter moins".split()
)
POST_NEGATIONS = frozenset(
    "non absent absente absents absentes aucun aucune negatif negative negatifs negatives neant nul nulle 0 zero"
    .split()
)
# After a mention, what says it is over: "le saignement s'est arrêté", "la confusion a disparu".
RESOLVED = frozenset(
    "disparu disparue disparus disparues resolu resolue resolus resolues arrete arretee arretes arretees".split()
)
ALONE_NEGATIONS = frozenset({"non", "0", "zero"})  # deny only as a whole answer: "non soulagée", "0,5 mg"
POST_SCOPE = 5  # words after a mention its answer may come in
TOKEN = re.compile(r"[^\W_]+")
_DOUBLED = re.compile(r"(.)\1+")


@dataclass(frozen=True)
class Mention:
    """One mention of a concept: where it is in the text, which of the concept's phrases it matched."""

    concept: str
    phrase: str
    start: int
    end: int
    text: str
    negated: bool = False


@dataclass(frozen=True)
class _Token:
    norm: str  # lower case, no accents: for negation cues
    key: str  # norm, then plural, doubled letters and final e folded: for concept words
    start: int
    end: int


def fold(word: str) -> str:
    """Lower case without accents or ligatures: "Essoufflée" -> "essoufflee"."""
    word = word.lower().replace("œ", "oe").replace("æ", "ae")
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def word_key(norm: str) -> str:
    """The form two spellings of one word share: plural, doubled letters and a final e folded away."""
    if len(norm) > 4 and norm.endswith("aux"):
        norm = norm[:-3] + "al"
    elif len(norm) > 3 and (norm[-1] == "s" and not norm.endswith("ss") or norm.endswith(("aux", "eux"))):
        norm = norm[:-1]  # a final x is a plural after au, eu only: "toux" stays "toux"
    norm = _DOUBLED.sub(r"\1", norm)
    if len(norm) > 3 and norm.endswith("e"):
        norm = norm[:-1]
    return norm


_NOT_TYPO_KEYS = frozenset(word_key(fold(w)) for w in NOT_TYPOS)


def tokenize(text: str) -> list[_Token]:
    """Words of ``text`` with their offsets; apostrophes and hyphens split words ("n'est" -> n, est)."""
    return [_Token(*_forms(m.group()), m.start(), m.end()) for m in TOKEN.finditer(text)]


@lru_cache(maxsize=65536)
def _forms(word: str) -> tuple[str, str]:
    # Patients write with few words, over and over: each is folded once.
    norm = fold(word)
    return norm, word_key(norm)


def _tolerance(key: str) -> int:
    return 0 if len(key) <= 5 else 1 if len(key) <= 8 else 2


def _similar(word: str, concept_word: str) -> bool:
    if word == concept_word:
        return True
    limit = _tolerance(concept_word)
    if not limit or word[:1] != concept_word[:1] or word in _NOT_TYPO_KEYS:
        return False
    return Levenshtein.distance(word, concept_word, score_cutoff=limit) <= limit


@dataclass(frozen=True)
class _Phrase:
    concept: str
    phrase: str
    keys: tuple[str, ...]
    exclusion: bool = False  # "!chute de cheveux": a mention of the concept inside it is not one


class ConceptMatcher:
    """Concepts compiled once: each phrase as the keys of its content words."""

    def __init__(self, concepts: Mapping[str, Sequence[str]]):
        self.phrases: list[_Phrase] = []
        for concept, phrases in concepts.items():
            for phrase in phrases:
                exclusion = phrase.startswith(EXCLUSION)
                words = tokenize(phrase.removeprefix(EXCLUSION))
                content = [t.key for t in words if t.norm not in STOPWORDS]
                # "me tuer", "en finir": one word alone would say too little, keep the little word too
                keys = tuple(content if len(content) > 1 or len(words) == 1 else [t.key for t in words])
                if keys:
                    self.phrases.append(_Phrase(concept, phrase.removeprefix(EXCLUSION), keys, exclusion))
        self._vocabulary = frozenset(k for p in self.phrases for k in p.keys)
        self._starting: dict[str, list[_Phrase]] = {}  # phrases by their first word: a text is read once
        for p in self.phrases:
            self._starting.setdefault(p.keys[0], []).append(p)
        self._matches: dict[str, frozenset[str]] = {}

    def _concept_words(self, key: str) -> frozenset[str]:
        """Concept words a text word may stand for (itself, or the words it misspells); memoised per word."""
        found = self._matches.get(key)
        if found is None:
            # A concept word is itself, never a misspelling of another ("confusion" is not "convulsion").
            found = frozenset({key} if key in self._vocabulary else (w for w in self._vocabulary if _similar(key, w)))
            if len(self._matches) < 100_000:
                self._matches[key] = found
        return found

    def find(self, text: str, include_negated: bool = False) -> list[Mention]:
        """Mentions in ``text``, in text order; negated ones only with ``include_negated``."""
        tokens = tokenize(text)
        boundaries = _boundaries(text, tokens)
        words = [self._concept_words(t.key) for t in tokens]
        found: dict[tuple[str, int], Mention] = {}
        excluded: list[tuple[str, int, int]] = []
        for first in range(len(tokens)):
            for phrase in (p for word in words[first] for p in self._starting.get(word, ())):
                matched = _match_rest(phrase.keys, tokens, words, boundaries, first)
                if matched is None:
                    continue
                last = matched[-1]
                if phrase.exclusion:
                    excluded.append((phrase.concept, tokens[first].start, tokens[last].end))
                    continue
                negated = _negated(text, tokens, boundaries, matched)
                mention = Mention(
                    phrase.concept, phrase.phrase, tokens[first].start, tokens[last].end,
                    text[tokens[first].start:tokens[last].end], negated,
                )
                key = (phrase.concept, first)
                if key not in found or mention.end > found[key].end:
                    found[key] = mention
        mentions = _drop_nested(sorted(found.values(), key=lambda m: (m.start, m.concept)))
        mentions = _outside(mentions, excluded)
        return [m for m in mentions if include_negated or not m.negated]


def _drop_nested(mentions: list[Mention]) -> list[Mention]:
    """One mention per concept and span: "douleur thoracique" hides the "douleur" inside it. ``mentions`` are
    sorted by start, one a concept and start (the longest): a mention is inside an earlier one of its concept
    when it ends no later than the furthest of them."""
    furthest: dict[str, int] = {}
    kept: list[Mention] = []
    for m in mentions:
        if furthest.get(m.concept, -1) >= m.end:
            continue
        furthest[m.concept] = m.end
        kept.append(m)
    return kept


def _outside(mentions: list[Mention], excluded: list[tuple[str, int, int]]) -> list[Mention]:
    """The mentions that overlap no exclusion span of their concept ("chute" in "chute de cheveux")."""
    if not excluded:
        return mentions
    spans: dict[str, tuple[list[int], list[int]]] = {}  # concept -> starts, running max of ends
    for concept, start, end in sorted(excluded, key=lambda x: x[1]):
        starts, ends = spans.setdefault(concept, ([], []))
        starts.append(start)
        ends.append(max(end, ends[-1]) if ends else end)
    kept = []
    for m in mentions:
        starts, ends = spans.get(m.concept, ((), ()))
        before = bisect.bisect_left(starts, m.end)  # exclusions starting before the mention ends
        if not (before and ends[before - 1] > m.start):
            kept.append(m)
    return kept


def _boundaries(text: str, tokens: list[_Token]) -> list[bool]:
    """boundaries[i]: a clause ends between token i and i + 1 (punctuation in between)."""
    return [_ends_clause(text, tokens[i], tokens[i + 1]) for i in range(len(tokens) - 1)] + [True]


def _ends_clause(text: str, before: _Token, after: _Token) -> bool:
    gap = text[before.end:after.start]
    if gap in (",", ".", "/") and before.norm.isdigit() and after.norm.isdigit():
        return False  # a number ("0,5", "13/8"), not punctuation
    return bool(BOUNDARY_CHARS.search(gap))


def _match_rest(keys, tokens, words, boundaries, first) -> list[int] | None:
    """Indexes of the phrase's words from ``first`` on, each within MAX_GAP words of the last, or None."""
    matched = [first]
    for key in keys[1:]:
        skipped = 0
        for candidate in range(matched[-1] + 1, min(matched[-1] + 2 + MAX_SKIP, len(words))):
            if boundaries[candidate - 1]:
                return None
            if key in words[candidate]:
                matched.append(candidate)
                break
            skipped += tokens[candidate].norm not in STOPWORDS
            if skipped > MAX_GAP:
                return None
        else:
            return None
    return matched


def _is_cue(tokens: list[_Token], boundaries: list[bool], i: int, clause_start: int) -> bool:
    word = tokens[i].norm
    after = tokens[i + 1].norm if i + 1 < len(tokens) else ""
    after2 = tokens[i + 2].norm if i + 2 < len(tokens) else ""
    following = after2 if after in ("de", "d") else after
    if following in PSEUDO_AFTER_CUE:
        return False
    if word == "pas":
        if i > 0 and tokens[i - 1].norm in ("arrete", "cesse"):  # "n'arrête pas de saigner": it goes on
            return False
        return not (after == "mal" and after2 in ("de", "d"))  # "pas mal de douleurs": a lot of pain
    if word == "plus":  # "n'est plus essoufflé"; without ne, "plus essoufflé" is comparative
        if any(t.norm in ("ne", "n") for t in tokens[max(clause_start, i - 4):i]):
            return True
        # "Plus de douleur depuis hier" opening a clause says "no more"; "plus de douleurs qu'hier" compares.
        return i == clause_start and after in ("de", "d") and not _later_in_clause(tokens, boundaries, i, ("que", "qu"))
    if word == "jamais":  # "jamais été aussi essoufflée" says the opposite
        return not any(t.norm in ("aussi", "autant", "si", "tant") for t in tokens[i + 1:i + 4])
    if word == "absence":  # "des absences" are lapses of consciousness
        return after in ("de", "d")
    return word in ("aucun", "aucune", "aucuns", "aucunes", "sans", "ni", "non", "nie", "nient", "niant",
                    "nullement", "guere", "rien")


def _later_in_clause(tokens: list[_Token], boundaries: list[bool], i: int, words: tuple[str, ...]) -> bool:
    for j in range(i + 1, len(tokens)):
        if tokens[j].norm in words:
            return True
        if boundaries[j]:
            return False
    return False


def _clause_start(tokens, boundaries, i) -> int:
    start = i
    while start > 0 and not boundaries[start - 1] and tokens[start - 1].norm not in BOUNDARY_WORDS:
        start -= 1
    return start


def _negated(text: str, tokens: list[_Token], boundaries: list[bool], matched: list[int]) -> bool:
    first, last = matched[0], matched[-1]
    # A cue between the phrase's words: "douleur non thoracique" (a cue that is a phrase word, as in
    # "ne répond plus", is the complaint itself).
    start = _clause_start(tokens, boundaries, first)
    for i in range(first + 1, last):
        if i not in matched and _is_cue(tokens, boundaries, i, start):  # "ne fait plus de malaises"
            return True
    # A cue before, in the same clause, or in a list the cue governs ("pas de fièvre, ni d'essoufflement").
    i = first - 1
    reach = 0
    while i >= 0 and reach < SCOPE:
        if boundaries[i]:
            if not _list_goes_on(tokens, i + 1):
                break
        elif tokens[i].norm in BOUNDARY_WORDS and not _list_goes_on(tokens, i + 1, tokens[i].norm):
            break
        if _is_cue(tokens, boundaries, i, _clause_start(tokens, boundaries, i)):
            return True
        i -= 1
        reach += 1
    # "ne" before, "pas"/"plus"/"jamais" after the verb: "il ne tombe plus", "elle ne saigne pas".
    if _bracketed(tokens, boundaries, first, last):
        return True
    # A cue after it, a questionnaire's answer included: "douleur thoracique : non", "essoufflement absent",
    # "nombre de chutes ce mois-ci : 0".
    for j in range(last + 1, min(last + 1 + POST_SCOPE, len(tokens))):
        gap = text[tokens[j - 1].end:tokens[j].start]
        if BOUNDARY_CHARS.search(gap.replace(":", " ").replace("?", " ")) or tokens[j - 1].norm in BOUNDARY_WORDS:
            break
        word = tokens[j].norm
        if word in POST_NEGATIONS and (word not in ALONE_NEGATIONS or boundaries[j]):  # "non soulagée" denies nothing
            return True
        if word in RESOLVED:  # "la confusion a disparu"; "ne s'est pas arrêté" has its own cue before it
            return not any(t.norm in ("pas", "plus", "jamais", "toujours") for t in tokens[last + 1:j])
    return False


def _bracketed(tokens: list[_Token], boundaries: list[bool], first: int, last: int) -> bool:
    before = range(max(0, first - 3), first)
    if not any(tokens[i].norm in ("ne", "n") and not any(boundaries[j] for j in range(i, first)) for i in before):
        return False
    for j in range(last + 1, min(last + 3, len(tokens))):
        if boundaries[j - 1]:
            return False
        if tokens[j].norm in ("pas", "plus", "jamais", "guere", "point"):
            return True
    return False


def _list_goes_on(tokens: list[_Token], i: int, conjunction: str = ",") -> bool:
    """After a comma or "ou", does a list of denied things go on? "..., de malaise", "ou de chute", "ni ..."."""
    if conjunction not in (",", "ou", "ni"):
        return False
    word = tokens[i].norm if i < len(tokens) else ""
    after = tokens[i + 1].norm if i + 1 < len(tokens) else ""
    return word == "ni" or (word in ("de", "d") and after not in ("la", "l"))


@lru_cache(maxsize=32)
def _compiled(frozen: tuple[tuple[str, tuple[str, ...]], ...]) -> ConceptMatcher:
    return ConceptMatcher(dict(frozen))


def find_mentions(
    text: str, concepts: Mapping[str, Sequence[str]], *, include_negated: bool = False
) -> list[Mention]:
    """The concepts ``text`` mentions, in text order; denied ones are left out unless ``include_negated``.

    ``concepts`` maps a concept id ("douleur-thoracique") to its French phrases ("douleur thoracique",
    "mal à la poitrine"...): see :func:`load_concepts` for the default list.
    """
    frozen = tuple((concept, tuple(phrases)) for concept, phrases in concepts.items())
    return _compiled(frozen).find(text or "", include_negated)


def load_concepts(path: str | Path = DEFAULT_CONCEPTS_PATH) -> dict[str, list[str]]:
    """Concept id -> French phrases, from a YAML file shaped like rules/complaint_concepts.yaml."""
    return {concept: list(entry["phrases"]) for concept, entry in _read(path).items()}


def load_concept_labels(path: str | Path = DEFAULT_CONCEPTS_PATH) -> dict[str, str]:
    """Concept id -> its French label ("Douleur thoracique"), for alert messages."""
    return {concept: entry.get("label", concept) for concept, entry in _read(path).items()}


def _read(path: str | Path) -> dict:
    import yaml  # only the loader needs it; matching stays importable without a YAML library

    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    concepts = document.get("concepts") if isinstance(document, dict) else None
    if not isinstance(concepts, dict):
        raise ValueError(f"{path}: expected a mapping 'concepts: {{id: {{label, phrases}}}}'")
    for concept, entry in concepts.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("phrases"), list) or not entry["phrases"]:
            raise ValueError(f"{path}: concept {concept!r} needs a non-empty list 'phrases'")
    return concepts
