"""Codes and identifier systems every room of the platform shares: written by one, read by another.

A feed writes a care team's roles and a patient's identity status; triage reads the roles to know
whom the coordinator calls first; the pre-DMP reads the identity status and the DMP consent;
topics find triage alerts by their code. One definition here keeps writers and readers agreeing.
Relais's own code systems live under ``RELAIS_CODE_SYSTEMS``; French ones are FR Core's and ANS's
(``../shared/research/french-interop.md`` §1.4, §2.1).
"""

from __future__ import annotations

RELAIS_CODE_SYSTEMS = "https://relais.example/fhir/CodeSystem"

# --- Patient identity (FR Core) ---------------------------------------------------------------
INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
INS_NIA = "urn:oid:1.2.250.1.213.1.4.9"
INS_NIR_TEST = "urn:oid:1.2.250.1.213.1.4.10"
INS_NIR_DEMO = "urn:oid:1.2.250.1.213.1.4.11"
INS_SYSTEMS = (INS_NIR, INS_NIA, INS_NIR_TEST, INS_NIR_DEMO)
FR_CORE_IDENTIFIER_TYPES = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"

IDENTITY_RELIABILITY = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability"
IDENTITY_STATUS_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445"
IDENTITY_STATUSES = ("PROV", "RECUP", "VALI", "QUAL")
QUALIFIED_IDENTITY_STATUSES = ("VALI", "QUAL")

# --- Professionals and organisations (FR Core) -------------------------------------------------
RPPS = "https://rpps.esante.gouv.fr"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
IDNST = "urn:oid:1.2.250.1.71.4.2.2"
FINESS = "https://finess.esante.gouv.fr"

# --- Triage ------------------------------------------------------------------------------------
TASK_CODE_SYSTEM = f"{RELAIS_CODE_SYSTEMS}/task-code"
TRIAGE_ALERT = {"system": TASK_CODE_SYSTEM, "code": "triage-alert", "display": "Alerte de triage"}
TRIAGE_CLASS_SYSTEM = f"{RELAIS_CODE_SYSTEMS}/triage-class"
TRIAGE_CLASSES = {
    "acute": "Aigu",
    "chronic-known": "Chronique, patient connu",
    "chronic-unknown": "Chronique, patient pas encore connu (parcours pré-DMP)",
}
PRIORITY_ORDER = ("stat", "asap", "urgent", "routine")  # most urgent first

# --- Care team: whom the coordinator calls, in this order ---------------------------------------
CARE_ROLE_SYSTEM = f"{RELAIS_CODE_SYSTEMS}/care-role"
CARE_ROLES = {
    "general-practitioner": "Médecin traitant",
    "advanced-practice-nurse": "Infirmier(e) en pratique avancée",
    "nurse": "Infirmier(e)",
    "pharmacist": "Pharmacien(ne)",
    "physiotherapist": "Masseur-kinésithérapeute",
    "other": "Autre professionnel",
}
CALL_ORDER = tuple(CARE_ROLES)
# SNOMED CT occupations a sender may use instead of our codes, read as the same roles.
SNOMED_CARE_ROLES = {
    "446050000": "general-practitioner",  # Primary care physician
    "62247001": "general-practitioner",  # General practitioner
    "224571005": "advanced-practice-nurse",  # Nurse practitioner
    "106292003": "nurse",  # Professional nurse
    "224535009": "nurse",  # Registered nurse
    "46255001": "pharmacist",
    "36682004": "physiotherapist",
}

# --- DMP consent (PAM France ZFA, or a Consent resource) ---------------------------------------
CONSENT_KIND_SYSTEM = f"{RELAIS_CODE_SYSTEMS}/consent-kind"
DMP_FEEDING = "dmp-feeding"  # provision.type deny: the patient objected to feeding the DMP
DMP_CONSULTATION = "dmp-consultation"
