"""FHIR errors: an exception that carries its HTTP status and becomes an OperationOutcome."""

from __future__ import annotations


class FHIRError(Exception):
    """An error answered as an OperationOutcome with ``status``.

    ``code`` is an IssueType (invalid, not-found, conflict, processing, ...); ``expression``
    lists FHIRPath locations (``Observation.status``) when the error is about an element.
    """

    def __init__(
        self,
        status: int,
        diagnostics: str,
        code: str = "processing",
        expression: list[str] | None = None,
        issues: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.code = code
        self.expression = expression or []
        self.issues = issues
        self.headers = headers or {}

    def outcome(self) -> dict:
        if self.issues:
            return operation_outcome(self.issues)
        return operation_outcome([issue("error", self.code, self.diagnostics, self.expression)])


def issue(severity: str, code: str, diagnostics: str, expression: list[str] | None = None) -> dict:
    """One OperationOutcome.issue."""
    entry: dict = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        entry["expression"] = expression
    return entry


def operation_outcome(issues: list[dict]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": issues}


def not_found(resource_type: str, id: str) -> FHIRError:
    return FHIRError(404, f"{resource_type}/{id} is not known", code="not-found")


def gone(resource_type: str, id: str, version: int) -> FHIRError:
    return FHIRError(410, f"{resource_type}/{id} was deleted (version {version})", code="deleted")
