"""What the controller needs of the parts around it, declared here where they are used (the loop and
the replica manager both publish to a gateway; neither imports the other for it)."""

from __future__ import annotations

from typing import Protocol

from podium.gateway.routes import EndpointRoute


class RoutePublisher(Protocol):
    """A gateway in this process, the route book of remote gateways, or both (`FanOut`)."""

    def set_route(self, route: EndpointRoute) -> None: ...
    def remove_route(self, endpoint_id: str) -> None: ...
    def replica_in_flight(self, replica_id: str) -> int: ...
