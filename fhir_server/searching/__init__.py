"""The one search service, one floor above ``fhir_server/search/`` (which knows no store).

``search`` answers a type's search as the actor may see it (access filtering, ``total``, includes,
paging snapshots, ``_summary``/``_elements``, warnings); ``page`` answers a paging link;
``everything`` answers ``Patient/$everything``; ``compartment_search`` and ``system_search`` answer
``Patient/[id]/[type]?`` and ``[base]?_type=...`` (``system``); ``worklist`` answers ``Task/$worklist``
(``care_team`` orders whom to call); ``conditional_criteria`` parses the criteria of
conditional interactions. ``paging`` keeps snapshots in the store, ``custom`` loads stored
SearchParameters into the registry, ``chains`` makes chains and ``_has`` traverse only what the caller
may read.
"""

from .criteria import conditional_criteria
from .everything import everything
from .service import Access, Settings, page, search
from .system import compartment_search, system_search
from .worklist import worklist

__all__ = ["Access", "Settings", "compartment_search", "conditional_criteria", "everything", "page", "search",
           "system_search", "worklist"]
