"""The daemon: polling, in-memory fleet state, storage, service behaviour.

`from fleetd.daemon import Daemon` (loaded on first use, so importing `fleetd.daemon.state` stays cheap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetd.daemon.core import Daemon

__all__ = ["Daemon"]


def __getattr__(name: str) -> Any:
    if name == "Daemon":
        from fleetd.daemon.core import Daemon

        return Daemon
    raise AttributeError(name)
