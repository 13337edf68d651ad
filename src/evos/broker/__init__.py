"""The vehicle data broker: VSS signals in one place, served in-process and over KUKSA gRPC.

In-process apps use :class:`Broker` directly; remote apps speak ``kuksa.val.v1``/``v2`` to
:class:`BrokerServer`, for instance with :class:`BrokerClient` or the kuksa-client SDK.
"""

from evos.broker._client import BrokerClient, ProviderStream
from evos.broker._core import NOT_AVAILABLE, Broker, BrokerConfig, Datapoint, Provision, Subscription
from evos.broker._server import DEFAULT_ADDRESS, BrokerServer, ServerConfig

__all__ = [
    "DEFAULT_ADDRESS",
    "NOT_AVAILABLE",
    "Broker",
    "BrokerClient",
    "BrokerConfig",
    "BrokerServer",
    "Datapoint",
    "ProviderStream",
    "Provision",
    "ServerConfig",
    "Subscription",
]
