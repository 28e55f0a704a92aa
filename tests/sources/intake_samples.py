"""Real-shaped intake inputs for the source tests (synthetic patients, valid BSNs)."""

from __future__ import annotations

import json

BSN = "123456782"
OTHER_VALID = "111222333"  # passes the 11-check; must never be taken for the BSN


def siu(
    event: str = "S12",
    *,
    appt: str = "F1",
    control: str = "MSG0001",
    sent: str = "20261123120000+0100",
    start: str = "20261124093000",
    end: str = "20261124094500",
    bsn: str = BSN,
    charset: str = "8859/1",
    agenda: str = "Spreekuur Müller",
    status: str = "Booked",
    clinic: str = "CARD",
    sep: str = "\r",
) -> str:
    segments = [
        f"MSH|^~\\&|EPD|HOSP|PREFETCH|HOSP|{sent}||SIU^{event}^SIU_{event}|{control}|P|2.5"
        f"||||||{charset}",
        f"SCH|P{appt}^EPD|{appt}^EPD|||||NP^Nieuw patient|NP^Nieuw patient|||"
        f"^^^{start}^{end}||||||||||||||{status}",
        f"PID|1||{OTHER_VALID}^^^HOSP^PI~{bsn}^^^NLMINBIZA^NNNLD||Jansen^Jan||19700101|M",
        "PV1|1|O|CARD",
        "RGS|1",
        "AIS|1||NP^Nieuw patient",
        f"AIG|1||{agenda}",
        f"AIL|1||{clinic}^Kamer 1",
    ]
    return sep.join(segments) + sep


def fhir_bundle(version: str = "R4") -> str:
    patient = {
        "resourceType": "Patient",
        "id": "pat1",
        "identifier": [
            {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": BSN},
            {"system": "urn:oid:2.16.840.1.113883.2.4.6.3.99", "value": "P1"},
        ],
    }
    location = {"resourceType": "Location", "id": "loc", "identifier": [{"value": "CARD"}]}

    def appointment(aid: str, status: str, **extra: object) -> dict[str, object]:
        base: dict[str, object] = {
            "resourceType": "Appointment",
            "id": aid,
            "status": status,
            "appointmentType": {"coding": [{"code": "NP"}]},
            "start": "2026-11-24T09:30:00+01:00",
            "end": "2026-11-24T09:45:00+01:00",
            "participant": [
                {"actor": {"reference": "Patient/pat1"}, "status": "accepted"},
                {"actor": {"reference": "Location/loc"}, "status": "accepted"},
            ],
        }
        base.update(extra)
        return base

    entries: list[object] = [
        {"fullUrl": "urn:uuid:p1", "resource": patient},
        {"resource": location},
        {"resource": appointment("A1", "booked")},
        {"resource": appointment("A2", "cancelled")},
        {"resource": appointment("A3", "entered-in-error")},
        {"resource": appointment("A4", "booked", start="next tuesday")},
        {
            "resource": {
                "resourceType": "Appointment",
                "id": "A5",
                "status": "booked",
                "specialty": [{"coding": [{"code": "INT"}]}],
                "serviceType": [{"coding": [{"code": "CON"}]}],
                "start": "2026-11-24T10:30:00+01:00",
                "contained": [
                    {
                        "resourceType": "Patient",
                        "id": "p",
                        "identifier": [
                            {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": BSN},
                            {"value": "P5"},
                        ],
                    }
                ],
                "participant": [{"actor": {"reference": "#p"}}],
            }
        },
        "not an entry",
    ]
    if version == "STU3":
        # STU3: participant.actor.identifier carries the BSN without a Patient resource
        entries.append(
            {
                "resource": {
                    "resourceType": "Appointment",
                    "id": "A6",
                    "status": "booked",
                    "appointmentType": {"coding": [{"code": "NP"}]},
                    "specialty": [{"coding": [{"code": "CARD"}]}],
                    "start": "2026-11-24T11:00:00+01:00",
                    "participant": [
                        {
                            "actor": {
                                "identifier": {
                                    "system": "http://fhir.nl/fhir/NamingSystem/bsn",
                                    "value": BSN,
                                },
                                "display": "P6",
                            },
                            "required": "required",
                        }
                    ],
                }
            }
        )
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
