"""Is the process behind a holder name gone? Holder names are `host:pid:tag` (the send
budget's leases, `prefetch.limiter.SharedLimiter.holder`).

Only a process of this host can be known gone, and only when its pid no longer runs (or
is a zombie, killed and not yet reaped). Anything else counts as alive: another host, a
name that does not parse, a pid that runs (perhaps reused by another program), a pid we
may not signal. Wrong answers are therefore only ever on the safe side.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def holder_name(tag: str) -> str:
    """This process's holder name."""
    return f"{socket.gethostname()}:{os.getpid()}:{tag}"


def holder_gone(holder: str, host: str | None = None) -> bool:
    """True only when `holder` names a process of this host that no longer runs."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != (host or socket.gethostname()):
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it runs, as someone else
        return False
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """Killed, not yet reaped by its parent (Linux; elsewhere: not known, so False)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # "pid (comm) S ...": the state follows the last ')' (comm may contain anything)
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
