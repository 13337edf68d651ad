"""The car in the home and the device ecosystem: the MQTT bridge (Home Assistant's device discovery, evcc's
vehicle) and the owner's automations, apps of the car on the vehicle-data port. See docs/ecosystem.md and
docs/automations.md.

``bridge_config`` reads the bridge's YAML file and ``--mqtt URL``; ``MQTT_APP`` is the app ``evos up --mqtt``
runs; ``forget`` removes the car from a home's MQTT server. ``load_rules`` checks an automations file, ``Engine``
decides when its rules fire (a pure core: values and time in, firings out), ``AUTOMATIONS_APP`` runs them.
"""

from evos.ecosystem._automations import AUTOMATIONS_APP, read_log
from evos.ecosystem._bridge import MQTT_APP, Bridge, forget
from evos.ecosystem._config import BridgeConfig, bridge_config
from evos.ecosystem._engine import Engine, Firing
from evos.ecosystem._rules import Notify, Publish, Rules, Set, load_rules

__all__ = ["AUTOMATIONS_APP", "MQTT_APP", "Bridge", "BridgeConfig", "Engine", "Firing", "Notify", "Publish", "Rules",
           "Set", "bridge_config", "forget", "load_rules", "read_log"]
