"""HL7 ping: `COMT_IN118118` in, `COMT_IN229229` out (AORTA connectivity check).

The pong is a bare MCCI_MT000300 transmission: the wrapper parts come from
`prefetch.hl7v3.wrapper`, with `acknowledgement AA` pointing at the ping's id.
`build_ping` is here for tests and for an operator's connectivity check.
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from prefetch.domain import oids
from prefetch.domain.coded import Identifier
from prefetch.errors import MessageError
from prefetch.hl7v3.aorta_settings import AortaSettings
from prefetch.hl7v3.read import child, children, identifier
from prefetch.hl7v3.wrapper import device, transmission_head
from prefetch.hl7v3.xmlbuild import ii, sub, to_bytes

PING = "COMT_IN118118"
PONG = "COMT_IN229229"
_DEFAULT_SETTINGS = AortaSettings()


def build_ping(
    *,
    message_id: Identifier,
    sender_application_id: str,
    now: dt.datetime,
    settings: AortaSettings = _DEFAULT_SETTINGS,
) -> bytes:
    """A `COMT_IN118118` to the LSP (application id 1)."""
    root = transmission_head(PING, message_id=message_id, now=now, settings=settings)
    device(root, "receiver", settings.lsp_application_id)
    device(root, "sender", sender_application_id)
    return to_bytes(root)


def answer_ping(
    ping: etree._Element,
    *,
    message_id: Identifier,
    now: dt.datetime,
    settings: AortaSettings = _DEFAULT_SETTINGS,
) -> bytes:
    """The `COMT_IN229229` for a received ping element."""
    id_el = child(ping, "id")
    if id_el is None:
        raise MessageError("ping has no id")
    sender = next(
        (
            i.extension
            for i in map(identifier, children(ping, "sender", "device", "id"))
            if i.root == oids.AORTA_APPLICATION and i.extension
        ),
        None,
    )
    if sender is None:
        raise MessageError("ping has no sender application id")
    root = transmission_head(PONG, message_id=message_id, now=now, settings=settings)
    ack = sub(root, "acknowledgement", typeCode="AA")
    ii(sub(ack, "targetMessage"), "id", identifier(id_el))
    device(root, "receiver", sender)
    device(root, "sender", settings.lsp_application_id)
    return to_bytes(root)
