#!/usr/bin/env bash
# A real Home Assistant 2025.1.4 as a test peer for the MQTT bridge (device-based discovery needs HA >= 2024.11, and
# the last HA that runs on Python 3.11 is 2024.3.3): its own venv on pyenv's Python 3.12.1, started with --skip-pip,
# so every package HA would pip-install at run time must be here already.
#
#   scripts/ha_venv.sh            # creates ${EVOS_HA_VENV:-<repo>/.peers/ha}; does nothing when it is complete
#   EVOS_HA_VENV=/tmp/ha scripts/ha_venv.sh
#   EVOS_HA_PYTHON=/path/to/python3.12 scripts/ha_venv.sh
#
# What is installed: homeassistant==2025.1.4 with its own dependencies, home-assistant-frontend==20250109.2 (the
# frontend integration is always set up, even without default_config) and paho-mqtt==1.6.1 (the mqtt integration's
# requirement). The integrations the tests use (mqtt, mqtt_statestream, automation, the mqtt platforms lock, climate,
# number, button, select, switch, sensor, binary_sensor, device_tracker, update) and the ones bootstrap always sets up
# need nothing more (checked against every manifest's requirements). Not covered: mqtt's camera platform (numpy,
# PyTurboJPEG) and default_config (zeroconf, ssdp, dhcp, bluetooth, conversation, stream, ...): don't use them.
#
# Every package is pinned through the constraints below: HA's own homeassistant/package_constraints.txt (its wheel
# pins only its direct dependencies, so an unconstrained install today pulls bleak 3, dbus-fast 5, ... that 2025.1.4
# was never built for) plus the resolved rest. One pin HA itself lacks: pycares 4.5.0 — pycares 5 breaks aiodns 3.2.0
# ("Channel.query() takes 3 positional arguments"), which HA's aiohttp client session resolves names with.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${EVOS_HA_VENV:-$PWD/.peers/ha}"
PYTHON="${EVOS_HA_PYTHON:-$HOME/.pyenv/versions/3.12.1/bin/python}"
if [ ! -x "$PYTHON" ]; then
    PYTHON="$(command -v python3.12 || true)"
fi
if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
    echo "ha_venv.sh: needs Python 3.12 (pyenv's 3.12.1, or set EVOS_HA_PYTHON)" >&2
    exit 1
fi

CONSTRAINTS='acme==3.0.1
aiodns==3.2.0
aiohappyeyeballs==2.7.1
aiohasupervisor==0.2.2b5
aiohttp==3.11.11
aiohttp-cors==0.7.0
aiohttp-fast-zlib==0.2.0
aiooui==0.1.11
aiosignal==1.4.0
aiozoneinfo==0.2.1
anyio==4.7.0
astral==2.2
async-timeout==4.0.3
async_interrupt==1.2.0
atomicwrites-homeassistant==1.4.1
attrs==24.2.0
awesomeversion==24.6.0
bcrypt==4.2.0
bleak==0.22.3
bleak-retry-connector==3.6.0
bluetooth-adapters==0.20.2
bluetooth-auto-recovery==1.4.2
bluetooth-data-tools==1.20.0
boto3==1.44.18
botocore==1.44.18
btsocket==0.3.0
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.4.0
ciso8601==2.3.2
cronsim==2.6
cryptography==44.0.0
dbus-fast==2.24.3
envs==1.4
fnv-hash-fast==1.0.2
fnvhash==0.1.0
frozenlist==1.8.0
greenlet==3.5.6
h11==0.14.0
habluetooth==3.7.0
hass-nabucasa==0.87.0
home-assistant-bluetooth==1.13.0
home-assistant-frontend==20250109.2
homeassistant==2025.1.4
httpcore==1.0.5
httpx==0.27.2
idna==3.21
ifaddr==0.2.0
Jinja2==3.1.5
jmespath==1.1.0
josepy==1.15.0
lru-dict==1.3.0
MarkupSafe==3.0.4
mashumaro==3.23
multidict==6.9.1
orjson==3.10.12
packaging==26.4
paho-mqtt==1.6.1
pillow==11.0.0
propcache==0.2.1
psutil==7.2.2
psutil-home-assistant==0.0.1
pycares==4.5.0
pycognito==2024.5.1
pycparser==3.12
PyJWT==2.10.1
pyOpenSSL==24.3.0
pyRFC3339==2.1.1
PyRIC==0.1.6.3
python-dateutil==2.9.0.post0
python-slugify==8.0.4
pytz==2026.6
PyYAML==6.0.2
requests==2.32.3
s3transfer==0.19.3
securetar==2024.11.0
setuptools==84.2.1
six==1.17.0
sniffio==1.3.1
snitun==0.39.1
SQLAlchemy==2.0.36
text-unidecode==1.3
typing_extensions==4.16.0
tzdata==2026.6
uart-devices==0.1.1
ulid-transform==1.0.2
urllib3==1.26.20
usb-devices==0.5.1
uv==0.5.8
voluptuous==0.15.2
voluptuous-openapi==0.0.5
voluptuous-serialize==2.6.0
webrtc-models==0.3.0
yarl==1.18.3'
REQUIREMENTS="homeassistant==2025.1.4 home-assistant-frontend==20250109.2 paho-mqtt==1.6.1"

# The marker records what was installed: the same pins and the same Python mean the venv is complete.
STAMP="$(printf '%s\n%s\n%s\n' "$REQUIREMENTS" "$CONSTRAINTS" "$("$PYTHON" -VV)" | sha256sum | cut -d' ' -f1)"
MARKER="$VENV/.evos-ha-complete"
if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$STAMP" ] && [ -x "$VENV/bin/hass" ]; then
    exit 0
fi

echo "ha_venv.sh: installing Home Assistant 2025.1.4 into $VENV (about 1-2 minutes, ~740 MB)" >&2
rm -f "$MARKER"
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
CONSTRAINTS_FILE="$(mktemp)"
trap 'rm -f "$CONSTRAINTS_FILE"' EXIT
printf '%s\n' "$CONSTRAINTS" > "$CONSTRAINTS_FILE"
# shellcheck disable=SC2086  # REQUIREMENTS is a list of words
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$CONSTRAINTS_FILE" $REQUIREMENTS
"$VENV/bin/python" -m pip check >&2
"$VENV/bin/python" -c 'import homeassistant.components.mqtt.discovery, hass_frontend, paho.mqtt.client, aiodns'
printf '%s\n' "$STAMP" > "$MARKER"
echo "ha_venv.sh: done ($(du -sh "$VENV" | cut -f1))" >&2
