"""String normalisation shared by extraction and parsing: case- and accent-insensitive matching."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Letters NFKD does not decompose but French and Nordic names use.
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l"})


@lru_cache(maxsize=65536)
def normalize(value: str) -> str:
    """Casefolded, accents stripped, inner whitespace collapsed: "  Hélène " -> "helene"."""
    if value.isascii():
        return " ".join(value.split()).casefold()
    decomposed = unicodedata.normalize("NFKD", value.translate(_LIGATURES))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.split()).casefold()
