"""Every AORTA wire choice that public material leaves uncertain or that differs per
environment, in one frozen value (AORTA.md marks them **[U]**).

Qualification against the real LSP should change a setting here (or in the TOML the
settings loader reads), never the message builders. Defaults follow the only captured
messages and the Nictiz examples.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefetch.domain import oids
from prefetch.errors import ConfigError

_PROCESSING_CODES = frozenset({"P", "T", "D"})
_QUERY_STATUS_CODES = frozenset({"new", "executing"})


@dataclass(frozen=True, slots=True)
class AortaSettings:
    """Static choices for building and addressing HL7v3 messages to the LSP."""

    processing_code: str = "P"
    """Transmission `processingCode`: "P" production, "T" acceptance/training, "D" debug."""

    processing_mode_code: str = "T"
    """Transmission `processingModeCode`: "T" (current processing) in every captured message."""

    accept_ack_code: str = "NE"
    """Transmission `acceptAckCode`: "NE" (never send an accept acknowledgement)."""

    version_code: str = "NICTIZEd2005-Okt"
    """Transmission `versionCode`: the Nictiz edition the LSP expects."""

    profile_id: str = "810"
    """Transmission `profileId/@extension` (root 2.16.840.1.113883.2.4.3.11.1)."""

    lsp_application_id: str = oids.LSP_APPLICATION_ID
    """AORTA application id of the LSP, the receiver of every query ("1")."""

    query_status_code: str = "new"
    """`queryByParameter/statusCode`: "new" by the HL7 standard; the only captured real
    request used "executing" [U]."""

    response_modality_code: str = "B"
    """`queryByParameter/responseModalityCode`: "B" batch (one MCCI_IN200101 answer)."""

    response_priority_code: str = "I"
    """`queryByParameter/responsePriorityCode`: "I" immediate."""

    hospital_organisation_type: str = oids.HOSPITAL_ORGANISATION_TYPE
    """Organisation type code of the overseer's organisation ("V4" ziekenhuis, code
    system 2.16.840.1.113883.2.4.15.1060)."""

    send_most_recent_dispense_indicator: bool = False
    """Whether to send `mostRecentDispenseForEachRxIndicator` (optional query parameter)."""

    most_recent_dispense_only: bool = False
    """Value of `mostRecentDispenseForEachRxIndicator` when it is sent."""

    soap_action: str = "urn:hl7-org:v3/QURX_IN990111NL"
    """HTTP SOAPAction header for the query; the exact value comes from the LSP's WSDL [U]."""

    wss_actor: str = "http://www.aortarelease.nl/actor/zim"
    """WS-Security header actor (used by the security layer)."""

    def __post_init__(self) -> None:
        if self.processing_code not in _PROCESSING_CODES:
            raise ConfigError(
                "processing_code must be P, T or D",
                key="processing_code",
                value=self.processing_code,
            )
        if self.query_status_code not in _QUERY_STATUS_CODES:
            raise ConfigError(
                "query_status_code must be 'new' or 'executing'",
                key="query_status_code",
                value=self.query_status_code,
            )
        for name in (
            "lsp_application_id",
            "version_code",
            "profile_id",
            "response_modality_code",
            "response_priority_code",
            "soap_action",
        ):
            if not getattr(self, name):
                raise ConfigError("AORTA setting must not be empty", key=name)


DEFAULT_SETTINGS = AortaSettings()
"""The defaults, shared (the value is frozen)."""
