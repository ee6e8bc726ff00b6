"""The HTTP API: read-only JSON views of the daemon's FleetState, with an OpenAPI 3.1 document.

`create_app(state)` builds the aiohttp application; `ApiServer(state, listen=...)` serves it
(127.0.0.1 unless told otherwise). `state` is a FleetState or a callable returning the current one.
"""

from fleetd.api.app import ApiServer, create_app, parse_listen

__all__ = ["ApiServer", "create_app", "parse_listen"]
