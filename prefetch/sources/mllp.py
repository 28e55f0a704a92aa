"""The live HL7v2 feed: an MLLP server (python-hl7's asyncio server) that applies each SIU
message to the appointment book and acknowledges it.

AA: applied (or a harmless replay). AR: the message cannot be taken at all (not HL7, not
SIU, unsupported event or character set). AE: SIU whose content is unusable, or the store
failed (the sender should resend). The reason goes in MSA-3; it never holds a value from
the message, so never a BSN.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import hl7.mllp

from prefetch.errors import PrefetchError
from prefetch.logging import get_logger
from prefetch.sources.hl7v2_source import (
    MessageProblem,
    VerifiedRule,
    control_id,
    decode_message,
    message_to_received,
    parse_text,
)
from prefetch.sources.intake import Received

log = get_logger("prefetch.sources.mllp")
MAX_MESSAGE_BYTES = 1024 * 1024
_UNSAFE = str.maketrans(dict.fromkeys("|^~\\&\r\n", " "))

Apply = Callable[[Sequence[Received]], object]


def _ack_text(code: str, reason: str, msg: Any | None, control: str) -> str:
    reason = reason.translate(_UNSAFE)[:200]
    if msg is not None:
        try:
            ack = str(msg.create_ack(code, application="PREFETCH"))
            lines = [line for line in ack.split("\r") if line]
            lines = [f"{line}|{reason}" if line.startswith("MSA") else line for line in lines]
            return "\r".join(lines) + "\r"
        except Exception:  # noqa: S110 - fall back to the hand-made ACK below
            pass
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S+0000")
    safe = control.translate(_UNSAFE)
    return f"MSH|^~\\&|PREFETCH||||{stamp}||ACK|{safe}|P|2.5\rMSA|{code}|{safe}|{reason}\r"


class FeedHandler:
    """Turns one framed message into an ACK, applying it to the book through `apply`."""

    def __init__(self, apply: Apply, rule: VerifiedRule | None = None) -> None:
        self.apply = apply
        self.rule = rule or VerifiedRule()
        self.counts = {"AA": 0, "AE": 0, "AR": 0}

    def handle(self, raw: bytes) -> bytes:
        msg: Any | None = None
        control = ""
        try:
            if len(raw) > MAX_MESSAGE_BYTES:
                raise MessageProblem("message larger than 1 MB", "AR")
            text = decode_message(raw)
            control = control_id(text)
            msg = parse_text(text)
            received = message_to_received(msg, self.rule)
            self.apply([received])
            code, reason = "AA", ""
        except MessageProblem as exc:
            code, reason = exc.ack, str(exc)
        except PrefetchError:
            code, reason = "AE", "could not store the message: resend it later"
        self.counts[code] += 1
        log.info("mllp_message", ack=code, control_id=control[:40], reason=reason or None)
        ack = _ack_text(code, reason, msg, control)
        return ack.encode("latin-1", errors="replace")


async def serve(
    handler: FeedHandler, *, host: str = "127.0.0.1", port: int = 2575
) -> asyncio.base_events.Server:
    """Start listening; each connection is served until the sender closes it."""

    async def connection(reader: Any, writer: Any) -> None:
        try:
            while True:
                try:
                    raw = await reader.readblock()
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                except Exception:
                    writer.writeblock(
                        _ack_text("AR", "broken or oversized MLLP frame", None, "").encode()
                    )
                    await writer.drain()
                    continue
                ack = await asyncio.to_thread(handler.handle, raw)
                writer.writeblock(ack)
                await writer.drain()
        finally:
            writer.close()

    server: asyncio.base_events.Server = await hl7.mllp.start_hl7_server(
        connection, host=host, port=port, limit=MAX_MESSAGE_BYTES
    )
    return server
