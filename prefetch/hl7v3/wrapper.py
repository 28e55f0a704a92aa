"""The transmission wrapper parts shared by the query and the answer items."""

from __future__ import annotations

import datetime as dt

from lxml import etree

from prefetch.domain import oids
from prefetch.domain.coded import Identifier
from prefetch.hl7v3.aorta_settings import AortaSettings
from prefetch.hl7v3.xmlbuild import ii, ii_values, root_element, sub


def transmission_head(
    interaction: str, *, message_id: Identifier, now: dt.datetime, settings: AortaSettings
) -> etree._Element:
    """Root element with id .. acceptAckCode (MCCI_MT000100 / MCCI_MT000300 order)."""
    from prefetch.hl7v3.xmlbuild import format_ts

    root = root_element(interaction)
    ii(root, "id", message_id)
    sub(root, "creationTime", value=format_ts(now))
    sub(root, "versionCode", code=settings.version_code)
    ii_values(root, "interactionId", oids.INTERACTION, interaction)
    ii_values(root, "profileId", oids.PROFILE, settings.profile_id)
    sub(root, "processingCode", code=settings.processing_code)
    sub(root, "processingModeCode", code=settings.processing_mode_code)
    sub(root, "acceptAckCode", code=settings.accept_ack_code)
    return root


def device(parent: etree._Element, tag: str, application_id: str) -> None:
    """`receiver` / `sender` with one device identified by its AORTA application id."""
    ii_values(sub(sub(parent, tag), "device"), "id", oids.AORTA_APPLICATION, application_id)
