"""The pre-DMP's codes: the document's metadata as ANS PDSm 3.1.1 binds it, and Relais's own markers.

Sources: ``../shared/research/french-interop.md`` §1.2 (PDSm profiles and their CI-SIS bindings),
§1.4 (INS), and the CI-SIS terminologies (TRE_A03, TRE_R02 in JDV_J02, TRE_A01 in JDV_J04).
"""

from __future__ import annotations

from fhir_server.codes import RELAIS_CODE_SYSTEMS

LOINC = "http://loinc.org"
# The document's type (XDS typeCode). Why this code: README, "Le pré-DMP".
DOCUMENT_TYPE = {"system": LOINC, "code": "60591-5", "display": "Patient summary Document"}
DOCUMENT_TITLE = "Pré-DMP : synthèse des informations connues de la plateforme"

NOS = "https://mos.esante.gouv.fr/NOS"
# XDS classCode: TRE_A03-ClasseDocument (OID 1.2.250.1.213.1.1.4.1), code 11 "Synthèse".
CLASS_SYSTEM = f"{NOS}/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument"
DOCUMENT_CLASS = {"system": CLASS_SYSTEM, "code": "11", "display": "Synthèse"}
# XDS formatCode: a FHIR document is fully described by its MIME type (TRE_A11-IheFormatCode).
FORMAT_SYSTEM = "urn:oid:1.3.6.1.4.1.19376.1.2.3"
DOCUMENT_FORMAT = {"system": FORMAT_SYSTEM, "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                   "display": "Format décrit par le type MIME"}
CONTENT_TYPE = "application/fhir+json"
# XDS confidentialityCode: v3 Confidentiality N (PDSm: "la valeur par défaut à utiliser est N").
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
CONFIDENTIALITY_NORMAL = {"system": CONFIDENTIALITY_SYSTEM, "code": "N", "display": "normal"}
# healthcareFacilityTypeCode (JDV_J02, from TRE_R02-SecteurActivite): a care-coordination structure.
FACILITY_SYSTEM = f"{NOS}/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite"
FACILITY_TYPE = {"system": FACILITY_SYSTEM, "code": "SA57",
                 "display": "Structure de coopération avec mission de coordination de soins"}
# practiceSettingCode (JDV_J04, from TRE_A01-CadreExercice): care given to a patient living at home.
PRACTICE_SYSTEM = f"{NOS}/TRE_A01-CadreExercice/FHIR/TRE-A01-CadreExercice"
PRACTICE_SETTING = {"system": PRACTICE_SYSTEM, "code": "AMBULATOIRE", "display": "Ambulatoire"}
# SubmissionSet designationType (XDS contentTypeCode, JDV_J03): the same activity sector.
CONTENT_TYPE_CODE = FACILITY_TYPE
LANGUAGE = "fr-FR"

# PDSm 3.1.1 and IHE MHD 4.2.x
PDSM = "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition"
PDSM_BUNDLE = f"{PDSM}/pdsm-comprehensive-provide-document-bundle"
PDSM_DOCUMENT_REFERENCE = f"{PDSM}/pdsm-comprehensive-document-reference"
PDSM_SUBMISSION_SET = f"{PDSM}/PDSmSubmissionSetComprehensive"
MHD = "https://profiles.ihe.net/ITI/MHD/StructureDefinition"
DESIGNATION_TYPE = f"{MHD}/ihe-designationType"
SOURCE_ID = f"{MHD}/ihe-sourceId"
SOURCE_PATIENT_ID = f"{MHD}/ihe-sourcePatientId"
MHD_LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
SUBMISSION_SET_CODE = {"system": MHD_LIST_TYPES, "code": "submissionset", "display": "Submission Set"}
URI = "urn:ietf:rfc:3986"

# Relais's markers
PREDMP_TAG = {"system": f"{RELAIS_CODE_SYSTEMS}/document-kind", "code": "pre-dmp", "display": "Pré-DMP"}
EXPORT_EXTENSION = "https://relais.example/fhir/StructureDefinition/dmp-export"
SECTION_SYSTEM = f"{RELAIS_CODE_SYSTEMS}/pre-dmp-section"
