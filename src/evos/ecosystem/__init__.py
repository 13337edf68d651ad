"""The car in the home and the device ecosystem: the MQTT bridge (Home Assistant's device discovery, evcc's
vehicle), an app of the car on the vehicle-data port. See docs/ecosystem.md.

``bridge_config`` reads the bridge's YAML file and ``--mqtt URL``; ``MQTT_APP`` is the app ``evos up --mqtt``
runs; ``forget`` removes the car from a home's MQTT server.
"""

from evos.ecosystem._bridge import MQTT_APP, Bridge, forget
from evos.ecosystem._config import BridgeConfig, bridge_config

__all__ = ["MQTT_APP", "Bridge", "BridgeConfig", "bridge_config", "forget"]
