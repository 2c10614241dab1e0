"""The constraints of ANS PDSm 3.1.1 (and the IHE MHD 4.2 rules under it) an ITI-65 Bundle must meet.

Written from the profiles in ``ansforge/IG-fhir-partage-de-documents-de-sante`` (``input/fsh/profiles/``):
PDSm_ComprehensiveProvideDocumentBundle (SubmissionSet 1, DocumentRefs 1.., no Patient entry),
PDSm_SubmissionSetComprehensive (contained 1.., extension 2.. with designationType and sourceId, source 1..),
PDSm_ComprehensiveDocumentReference (contained 1.., custodian 1.., date 1.., author 1.., securityLabel
confidentiality 1..1 from v3-ConfidentialityClassification, attachment size, hash and title 1..,
context.period.start 1.., relatesTo 1..1 on a replacement, and the constr-bind-* invariants on the
code systems of type, category, format, facilityType, practiceSetting). FHIRPath expressions are absent
from those invariants (their ``Expression`` lines are commented out): the checks below spell them out.
The sender checks every Bundle before it goes; the tests' stand-in recipient checks what it receives.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fhir_server.codes import IDNPS, INS_SYSTEMS, RPPS

from . import codes

NOS = codes.NOS
TYPE_SYSTEMS = {codes.LOINC, "urn:oid:2.16.840.1.113883.6.1", f"{NOS}/TRE_A04-Loinc/FHIR/TRE-A04-Loinc",
                "urn:oid:1.2.250.1.213.1.1.4.12", f"{NOS}/TRE_A05-TypeDocComplementaireCISIS/FHIR/"
                "TRE-A05-TypeDocComplementaireCISIS", "urn:oid:ASTM"}
CLASS_SYSTEMS = {codes.CLASS_SYSTEM, "urn:oid:1.2.250.1.213.1.1.4.1"}
FORMAT_SYSTEMS = {codes.FORMAT_SYSTEM, "urn:oid:1.2.250.1.213.1.1.4.2.282", "urn:oid:1.2.840.10008.2.6.1",
                  codes.URI, "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                  f"{NOS}/TRE_A06-FormatCodeComplementaire/FHIR/TRE-A06-FormatCodeComplementaire",
                  f"{NOS}/TRE_A11-IheFormatCode/FHIR/TRE-A11-IheFormatCode"}
PRODUCER_NOT_PS = {f"{NOS}/TRE_A00-ProducteurDocNonPS/FHIR/TRE-A00-ProducteurDocNonPS",
                   "urn:oid:1.2.250.1.213.1.1.4.6"}
FACILITY_SYSTEMS = {codes.FACILITY_SYSTEM, "urn:oid:1.2.250.1.71.4.2.4", *PRODUCER_NOT_PS}
PRACTICE_SYSTEMS = {codes.PRACTICE_SYSTEM, "urn:oid:1.2.250.1.213.1.1.4.9", *PRODUCER_NOT_PS}
CONFIDENTIALITY_CODES = {"U", "L", "M", "N", "R", "V"}
_OID_URN = re.compile(r"^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$")
_UUID_URN = re.compile(r"^urn:uuid:[0-9a-fA-F-]{36}$")
_SUBJECT = re.compile(r"^Patient\?identifier=(?P<system>[^|]+)\|(?P<value>[0-9A-Za-z]{13,15})$")


def _systems(cc: object) -> set[str]:
    return {c.get("system") for c in (cc or {}).get("coding") or [] if isinstance(c, dict)} if isinstance(cc, dict) \
        else set()


def _coded_from(issues: list[str], where: str, cc: object, allowed: set[str]) -> None:
    systems = _systems(cc)
    if not systems:
        issues.append(f"{where} : élément obligatoire absent ou sans code")
    elif not systems & allowed:
        issues.append(f"{where} : code hors des terminologies autorisées par PDSm ({', '.join(sorted(systems))})")


def _contained(resource: dict, reference: object) -> dict | None:
    text = (reference or {}).get("reference") if isinstance(reference, dict) else None
    if not isinstance(text, str) or not text.startswith("#"):
        return None
    return next((c for c in resource.get("contained") or [] if c.get("id") == text[1:]), None)


def _subject(issues: list[str], where: str, reference: object) -> None:
    text = (reference or {}).get("reference") if isinstance(reference, dict) else None
    match = _SUBJECT.match(text or "")
    if not match or match["system"] not in INS_SYSTEMS:
        issues.append(f"{where} : doit être la référence conditionnelle Patient?identifier=<système INS>|<INS> "
                      f"(trouvé {text!r})")


def _professional(issues: list[str], where: str, practitioner: dict | None, kinds: tuple[str, ...]) -> None:
    if practitioner is None or practitioner.get("resourceType") not in kinds:
        issues.append(f"{where} : doit référencer une ressource contenue ({' ou '.join(kinds)})")
        return
    if practitioner["resourceType"] == "Practitioner" and not any(
            i.get("system") in (RPPS, IDNPS) and i.get("value") for i in practitioner.get("identifier") or []):
        issues.append(f"{where} : le professionnel contenu n'a ni RPPS ni IDNPS")


def document_reference_issues(resource: dict, where: str, binaries: dict[str, dict]) -> list[str]:
    """The PDSm_ComprehensiveDocumentReference constraints ``resource`` breaks (a new document, POSTed)."""
    issues: list[str] = []
    if codes.PDSM_DOCUMENT_REFERENCE not in (resource.get("meta") or {}).get("profile", []):
        issues.append(f"{where}.meta.profile : le profil PDSm comprehensive n'est pas déclaré")
    for element in ("contained", "custodian", "date", "author", "masterIdentifier"):
        if not resource.get(element):
            issues.append(f"{where}.{element} : élément obligatoire absent")
    master = resource.get("masterIdentifier") or {}
    if master and (master.get("system") != codes.URI or not _OID_URN.match(str(master.get("value")))):
        issues.append(f"{where}.masterIdentifier : attendu un urn:oid (système {codes.URI})")
    if resource.get("status") != "current":
        issues.append(f"{where}.status : un document déposé a le statut current")
    _coded_from(issues, f"{where}.type", resource.get("type"), TYPE_SYSTEMS)
    categories = resource.get("category") or []
    _coded_from(issues, f"{where}.category", categories[0] if categories else None, CLASS_SYSTEMS)
    _subject(issues, f"{where}.subject", resource.get("subject"))
    for i, reference in enumerate(resource.get("author") or []):
        _professional(issues, f"{where}.author[{i}]", _contained(resource, reference),
                      ("Practitioner", "PractitionerRole", "Device", "Patient"))
    if "authenticator" in resource:
        _professional(issues, f"{where}.authenticator", _contained(resource, resource["authenticator"]),
                      ("Practitioner", "PractitionerRole", "Organization"))
    if resource.get("custodian") and _contained(resource, resource["custodian"]) is None \
            and not str(resource["custodian"].get("reference", "")).startswith(("Organization/", "urn:uuid:")):
        issues.append(f"{where}.custodian : référence non résolue")
    confidentiality = [c for label in resource.get("securityLabel") or [] for c in label.get("coding") or []
                       if c.get("system") == codes.CONFIDENTIALITY_SYSTEM]
    if len(confidentiality) != 1 or confidentiality[0].get("code") not in CONFIDENTIALITY_CODES:
        issues.append(f"{where}.securityLabel : exactement un niveau de confidentialité v3 (N, R...) attendu")
    contents = resource.get("content") or []
    if not contents:
        issues.append(f"{where}.content : élément obligatoire absent")
    for i, content in enumerate(contents):
        at = f"{where}.content[{i}]"
        attachment = content.get("attachment") or {}
        for element in ("size", "hash", "title"):
            if attachment.get(element) in (None, ""):
                issues.append(f"{at}.attachment.{element} : élément obligatoire absent")
        if attachment.get("language") != codes.LANGUAGE:
            issues.append(f"{at}.attachment.language : attendu {codes.LANGUAGE}")
        _coded_from(issues, f"{at}.format", content.get("format") and {"coding": [content["format"]]},
                    FORMAT_SYSTEMS)
        binary = binaries.get(str(attachment.get("url")))
        if binary is None:
            issues.append(f"{at}.attachment.url : doit désigner le Binary du même Bundle")
            continue
        data = base64.b64decode(binary.get("data") or "")
        if attachment.get("size") != len(data):
            issues.append(f"{at}.attachment.size : {attachment.get('size')} ne correspond pas au Binary ({len(data)})")
        if attachment.get("hash") != base64.b64encode(hashlib.sha1(data).digest()).decode():
            issues.append(f"{at}.attachment.hash : ne correspond pas au SHA-1 du Binary")
        if attachment.get("contentType") != binary.get("contentType"):
            issues.append(f"{at}.attachment.contentType : diffère de celui du Binary")
    context = resource.get("context") or {}
    if not (context.get("period") or {}).get("start"):
        issues.append(f"{where}.context.period.start : élément obligatoire absent")
    _coded_from(issues, f"{where}.context.facilityType", context.get("facilityType"), FACILITY_SYSTEMS)
    _coded_from(issues, f"{where}.context.practiceSetting", context.get("practiceSetting"), PRACTICE_SYSTEMS)
    relates = resource.get("relatesTo") or []
    if relates and (len(relates) != 1 or relates[0].get("code") != "replaces"):
        issues.append(f"{where}.relatesTo : un remplacement porte exactement une relation replaces")
    return issues


def submission_set_issues(resource: dict, where: str, documents: set[str]) -> list[str]:
    issues: list[str] = []
    if not resource.get("contained"):
        issues.append(f"{where}.contained : élément obligatoire absent")
    urls = {e.get("url") for e in resource.get("extension") or []}
    for url, name in ((codes.DESIGNATION_TYPE, "designationType"), (codes.SOURCE_ID, "sourceId"),
                      (codes.SOURCE_PATIENT_ID, "sourcePatientId")):
        if url not in urls:
            issues.append(f"{where}.extension : {name} absente")
    source_id = next((e.get("valueIdentifier", {}).get("value") for e in resource.get("extension") or []
                      if e.get("url") == codes.SOURCE_ID), None)
    if source_id is not None and not _OID_URN.match(str(source_id)):
        issues.append(f"{where}.extension[sourceId] : attendu un urn:oid")
    if {"submissionset"} != {c.get("code") for c in (resource.get("code") or {}).get("coding") or []}:
        issues.append(f"{where}.code : attendu MHDlistTypes#submissionset")
    uses = {i.get("use"): i.get("value") for i in resource.get("identifier") or []}
    if not _OID_URN.match(str(uses.get("usual"))):
        issues.append(f"{where}.identifier[uniqueId] : attendu un urn:oid (use usual)")
    if not _UUID_URN.match(str(uses.get("official"))):
        issues.append(f"{where}.identifier[entryUUID] : attendu un urn:uuid (use official)")
    for element in ("status", "mode", "date", "source"):
        if not resource.get(element):
            issues.append(f"{where}.{element} : élément obligatoire absent")
    if resource.get("source") and _contained(resource, resource["source"]) is None:
        issues.append(f"{where}.source : doit référencer une ressource contenue")
    _subject(issues, f"{where}.subject", resource.get("subject"))
    items = [str((e.get("item") or {}).get("reference")) for e in resource.get("entry") or []]
    if not items or any(item not in documents for item in items):
        issues.append(f"{where}.entry : chaque entrée doit désigner un DocumentReference du Bundle")
    return issues


def bundle_issues(bundle: dict) -> list[str]:
    """Every PDSm constraint ``bundle`` (an ITI-65 Provide Document Bundle) breaks, in French; [] when it conforms."""
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
        return ["Bundle.type : un ITI-65 est un Bundle de type transaction"]
    issues: list[str] = []
    entries = bundle.get("entry") or []
    by_type: dict[str, list[tuple[int, dict]]] = {}
    for i, entry in enumerate(entries):
        resource = entry.get("resource") or {}
        by_type.setdefault(resource.get("resourceType", "?"), []).append((i, entry))
        if not entry.get("fullUrl") or not (entry.get("request") or {}).get("method"):
            issues.append(f"Bundle.entry[{i}] : fullUrl et request sont obligatoires dans une transaction")
    if by_type.get("Patient"):
        issues.append("Bundle.entry : PDSm interdit la ressource Patient (entry[Patient] 0..0)")
    binaries = {e["fullUrl"]: e["resource"] for _, e in by_type.get("Binary", []) if e.get("fullUrl")}
    new_documents = [(i, e) for i, e in by_type.get("DocumentReference", [])
                     if (e.get("request") or {}).get("method") == "POST"]
    if not new_documents:
        issues.append("Bundle.entry[DocumentRefs] : au moins un DocumentReference déposé (POST) est obligatoire")
    for i, entry in new_documents:
        issues += document_reference_issues(entry["resource"], f"Bundle.entry[{i}].resource", binaries)
        if entry["resource"].get("relatesTo"):
            superseded = [e for _, e in by_type.get("DocumentReference", [])
                          if (e.get("request") or {}).get("method") in ("PUT", "PATCH")
                          and e["resource"].get("status") == "superseded"]
            if not superseded:
                issues.append(f"Bundle.entry[{i}].resource.relatesTo : le document remplacé doit figurer dans le "
                              "même Bundle avec le statut superseded")
    lists = [(i, e) for i, e in by_type.get("List", [])
             if "submissionset" in {c.get("code") for c in (e["resource"].get("code") or {}).get("coding") or []}]
    if len(lists) != 1:
        issues.append(f"Bundle.entry[SubmissionSet] : exactement un lot de soumission attendu ({len(lists)} trouvé(s))")
    documents = {e.get("fullUrl") for _, e in new_documents}
    for i, entry in lists:
        issues += submission_set_issues(entry["resource"], f"Bundle.entry[{i}].resource", documents)
    if codes.PDSM_BUNDLE not in (bundle.get("meta") or {}).get("profile", []):
        issues.append("Bundle.meta.profile : le profil PDSm du Bundle n'est pas déclaré")
    return issues
