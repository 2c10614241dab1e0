"""What the pre-DMP tells people: French first, English after, as one OperationOutcome diagnostics."""

from __future__ import annotations

from fhir_server.errors import FHIRError, issue

NOT_QUALIFIED = ("L'INS du patient n'est pas qualifié (statut d'identité {status}) : le pré-DMP ne peut pas être "
                 "validé. Qualifiez l'identité (statut VALI ou QUAL) puis reconstruisez le pré-DMP.",
                 "The patient's INS is not qualified (identity status {status}): the pre-DMP cannot be validated. "
                 "Qualify the identity (status VALI or QUAL), then rebuild the pre-DMP.")
NO_INS = ("Le patient n'a pas d'INS : le pré-DMP ne peut pas être validé.",
          "The patient has no INS: the pre-DMP cannot be validated.")
NOT_PRACTITIONER = ("Seul un professionnel de santé identifié (Practitioner avec un RPPS ou un IDNPS, nommé par la "
                    "revendication fhirUser du jeton) peut valider un pré-DMP.",
                    "Only an identified health professional (a Practitioner with an RPPS or IDNPS, named by the "
                    "token's fhirUser claim) may validate a pre-DMP.")
NOT_CURRENT = ("Ce brouillon de pré-DMP n'est plus le brouillon en cours ({why}) : validez le plus récent.",
               "This pre-DMP draft is not the current one ({why}): validate the latest.")
NOT_A_PREDMP = ("DocumentReference/{id} n'est pas un pré-DMP.", "DocumentReference/{id} is not a pre-DMP.")
ALREADY_FINAL = ("Ce pré-DMP est déjà validé.", "This pre-DMP is already validated.")
NO_PATIENT = ("Patient/{id} est inconnu.", "Patient/{id} is not known.")


def refusal(http_status: int, code: str, message: tuple[str, str], **values: object) -> FHIRError:
    """A FHIRError whose OperationOutcome says why in French and in English (two issues, same text order)."""
    french, english = (m.format(**values) for m in message)
    issues = [issue("error", code, french), issue("error", code, english)]
    return FHIRError(http_status, f"{french} ({english})", code=code, issues=issues)
