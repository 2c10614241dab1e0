"""SMART discovery: ``.well-known/smart-configuration`` and ``CapabilityStatement.rest.security``."""

from __future__ import annotations

from .assertion import ALGORITHMS
from .clients import CLIENT_SECRET_BASIC, PRIVATE_KEY_JWT
from .scopes import scopes_supported


def smart_configuration(issuer: str) -> dict:
    """The SMART configuration document of the token server at ``issuer``."""
    return {
        "issuer": issuer,
        "jwks_uri": issuer + "/jwks",
        "token_endpoint": issuer + "/token",
        "introspection_endpoint": issuer + "/introspect",
        "revocation_endpoint": issuer + "/revoke",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": [PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "scopes_supported": scopes_supported(),
        # The authorization endpoint's response types: there is none (client_credentials only).
        "response_types_supported": [],
        "capabilities": [
            "client-confidential-asymmetric",
            "client-confidential-symmetric",
            "permission-v1",
            "permission-v2",
            "permission-patient",
            "permission-user",
        ],
    }


def capability_security(issuer: str, base_url: str) -> dict:
    """``CapabilityStatement.rest.security``: SMART service, OAuth URIs, pointer to discovery."""
    return {
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "SMART Backend Services (OAuth 2.0 client_credentials)",
            }
        ],
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [
                    {"url": "token", "valueUri": issuer + "/token"},
                    {"url": "introspect", "valueUri": issuer + "/introspect"},
                    {"url": "revoke", "valueUri": issuer + "/revoke"},
                ],
            }
        ],
        "description": "SMART App Launch 2.x Backend Services; see "
        f"{base_url}/.well-known/smart-configuration",
    }
