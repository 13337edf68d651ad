"""The vehicle data broker: VSS signals in one place, served in-process and over KUKSA gRPC.

Apps are written against the vehicle-data port (``VehiclePort``): ``LocalPort`` on an in-process
``Broker``, or ``RemotePort``, a ``kuksa.val.v2`` client of a running ``BrokerServer`` (or any
KUKSA-compatible broker). ``Mirror`` keeps the latest values of the signals an app reads often.
``compile_condition`` is the car's one condition language (the ``WHERE`` of ``sdv.databroker.v1`` queries).
"""

from evos.broker._access import Guard
from evos.broker._auth import ALLOW_ALL, APP_ISSUER, Permissions, parse_scope
from evos.broker._core import NOT_AVAILABLE, Broker, BrokerConfig, Datapoint, Field, Provision, Subscription
from evos.broker._journal import JOURNAL_NAME, Caller, Journal, read_journal
from evos.broker._port import ActuationHandler, LocalPort, Mirror, VehiclePort
from evos.broker._query import Condition, compile_condition
from evos.broker._remote import RemotePort
from evos.broker._server import DEFAULT_ADDRESS, BrokerServer, ServerConfig

__all__ = [
    "ALLOW_ALL",
    "APP_ISSUER",
    "DEFAULT_ADDRESS",
    "JOURNAL_NAME",
    "NOT_AVAILABLE",
    "ActuationHandler",
    "Broker",
    "BrokerConfig",
    "BrokerServer",
    "Caller",
    "Condition",
    "Datapoint",
    "Field",
    "Guard",
    "Journal",
    "LocalPort",
    "Mirror",
    "Permissions",
    "Provision",
    "RemotePort",
    "ServerConfig",
    "Subscription",
    "VehiclePort",
    "compile_condition",
    "parse_scope",
    "read_journal",
]
