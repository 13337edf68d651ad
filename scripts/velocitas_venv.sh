#!/usr/bin/env bash
# A real Eclipse Velocitas vehicle app as a test peer for the broker's sdv.databroker.v1 (docs/sdv-databroker-v1.md):
# velocitas-sdk 0.15.7 (the Python SDK's newest release; it speaks only sdv.databroker.v1) in its own venv, and the
# vehicle model its apps import (`from vehicle import Vehicle, vehicle`), generated from evos' catalog by Velocitas'
# own velocitas-model-generator 0.9.0 (`gen-model`). tests/ecosystem/test_velocitas.py runs
# tests/ecosystem/velocitas/app.py with this venv's python against a whole car.
#
#   scripts/velocitas_venv.sh                 # creates ${EVOS_VELOCITAS_VENV:-<repo>/.peers/velocitas}; fast when done
#   scripts/velocitas_venv.sh CATALOG.json    # the model from another VSS JSON tree (default: the car's, below)
#   EVOS_VELOCITAS_VENV=/tmp/vapp EVOS_VELOCITAS_PYTHON=/path/to/python3.12 scripts/velocitas_venv.sh
#   EVOS=/path/to/evos scripts/velocitas_venv.sh   # the evos that exports the catalog (default: .venv's, or PATH's)
#
# Its own venv, because the SDK pins grpcio==1.64.1 and protobuf==5.29.5 exactly (evos needs grpcio>=1.82,
# protobuf>=7.35), and because both carry a different sdv/databroker/v1/types.proto in protobuf's descriptor pool:
# the app and the car never share a process. Python 3.10-3.12: the generator needs >=3.10, and grpcio 1.64.1 has no
# wheels for 3.13 (pip would build it from source). The generator pins vss-tools==6.0, which resolves beside the
# SDK's pins, so one venv holds both. Every package is pinned through the constraints below (the resolved set).
#
# The model: by default from the catalog the car serves, `evos catalog export` (VSS 6.0 plus evos' overlays: the
# cabin's scenes, the twin's driver, the apps' states), so that an app reaches every signal of the car by the model.
# gen-model reads the JSON tree (the format of `vss-tools export json`) and writes a package `vehicle`
# (one module per branch, velocitas_sdk.model classes) into $VENV/model; a .pth file puts that directory on the
# venv's sys.path. It is made again when the catalog file or the generator changes.
set -euo pipefail
CATALOG_ARG="${1:+$(realpath -m "$1")}"  # as given, from where the script was called
cd "$(dirname "$0")/.."

VENV="${EVOS_VELOCITAS_VENV:-$PWD/.peers/velocitas}"
EVOS_BIN="${EVOS:-}"
if [ -z "$CATALOG_ARG" ] && [ -z "$EVOS_BIN" ]; then
    if [ -x .venv/bin/evos ]; then EVOS_BIN=.venv/bin/evos; else EVOS_BIN="$(command -v evos || true)"; fi
    if [ -z "$EVOS_BIN" ]; then
        echo "velocitas_venv.sh: needs evos installed (.venv/bin/evos, evos on PATH, or EVOS=...) to export the" \
             "car's catalog, or a catalog file as its argument" >&2
        exit 1
    fi
fi
PYTHON="${EVOS_VELOCITAS_PYTHON:-$(command -v python3 || true)}"
if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' \
        2>/dev/null; then
    echo "velocitas_venv.sh: needs Python 3.10-3.12 (python3, or set EVOS_VELOCITAS_PYTHON)" >&2
    exit 1
fi
if [ -n "$CATALOG_ARG" ] && [ ! -f "$CATALOG_ARG" ]; then
    echo "velocitas_venv.sh: no catalog file $CATALOG_ARG" >&2
    exit 1
fi

CONSTRAINTS='aiohappyeyeballs==2.7.1
aiohttp==3.10.11
aiosignal==1.4.0
annotated-types==0.8.0
anytree==2.13.0
attrs==26.1.0
case-converter==1.2.0
click==8.5.1
cloudevents==1.11.0
Deprecated==1.3.1
deprecation==2.1.0
frozenlist==1.8.0
graphene==3.4.3
graphql-core==3.2.14
graphql-relay==3.2.0
grpcio==1.64.1
idna==3.21
importlib_metadata==7.1.0
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
markdown-it-py==4.3.0
mdurl==0.1.2
multidict==6.9.1
numpy==2.4.6
opentelemetry-api==1.25.0
opentelemetry-distro==0.46b0
opentelemetry-instrumentation==0.46b0
opentelemetry-instrumentation-logging==0.46b0
opentelemetry-sdk==1.25.0
opentelemetry-semantic-conventions==0.46b0
packaging==26.4
paho-mqtt==2.1.0
pandas==3.1.2
propcache==0.5.4
protobuf==5.29.5
pydantic==2.14.4
pydantic_core==2.50.5
Pygments==2.21.0
pyparsing==3.3.3
python-dateutil==2.9.0.post0
PyYAML==6.0.4
rdflib==7.6.0
referencing==0.37.0
rich==15.0.0
rich-click==1.9.9
rpds-py==2026.9.1
six==1.17.0
typing-inspection==0.4.5
typing_extensions==4.16.0
velocitas-model-generator==0.9.0
velocitas-sdk==0.15.7
vss-tools==6.0.0
wrapt==1.17.3
yarl==1.25.1
zipp==4.1.2'
REQUIREMENTS="velocitas-sdk==0.15.7 velocitas-model-generator==0.9.0"

# Two markers: the venv's (the same pins and the same Python mean it is complete) and the model's (the same catalog
# file and the same venv).
STAMP="$(printf '%s\n%s\n%s\n' "$REQUIREMENTS" "$CONSTRAINTS" "$("$PYTHON" -VV)" | sha256sum | cut -d' ' -f1)"
MARKER="$VENV/.evos-velocitas-complete"
if [ ! -f "$MARKER" ] || [ "$(cat "$MARKER")" != "$STAMP" ] || [ ! -x "$VENV/bin/gen-model" ]; then
    echo "velocitas_venv.sh: installing velocitas-sdk 0.15.7 and velocitas-model-generator 0.9.0 into $VENV" \
         "(about 30 s, ~300 MB)" >&2
    rm -f "$MARKER" "$VENV/.evos-velocitas-model"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv --clear "$VENV"
    CONSTRAINTS_FILE="$(mktemp)"
    trap 'rm -f "$CONSTRAINTS_FILE"' EXIT
    printf '%s\n' "$CONSTRAINTS" > "$CONSTRAINTS_FILE"
    # shellcheck disable=SC2086  # REQUIREMENTS is a list of words
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$CONSTRAINTS_FILE" $REQUIREMENTS
    "$VENV/bin/python" -m pip check >&2
    "$VENV/bin/python" -c 'import velocitas_sdk.vehicle_app, velocitas_sdk.util.log, velocitas.model_generator'
    printf '%s\n' "$STAMP" > "$MARKER"
fi

CATALOG="${CATALOG_ARG:-$VENV/car-catalog.json}"
if [ -z "$CATALOG_ARG" ]; then
    "$EVOS_BIN" catalog export --out "$CATALOG" >/dev/null
fi
MODEL_STAMP="$( (cat "$MARKER"; sha256sum < "$CATALOG") | sha256sum | cut -d' ' -f1)"
MODEL_MARKER="$VENV/.evos-velocitas-model"
if [ -f "$MODEL_MARKER" ] && [ "$(cat "$MODEL_MARKER")" = "$MODEL_STAMP" ] && [ -f "$VENV/model/vehicle/__init__.py" ]
then
    exit 0
fi
echo "velocitas_venv.sh: generating the vehicle model from $CATALOG into $VENV/model" >&2
rm -f "$MODEL_MARKER"
rm -rf "$VENV/model.new"
# gen-model deletes its target folder first: generate beside the model in use, then swap
"$VENV/bin/gen-model" --language python --package-name vehicle --target-folder "$VENV/model.new" "$CATALOG" >/dev/null
rm -rf "$VENV/model"
mv "$VENV/model.new" "$VENV/model"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
printf '%s\n' "$VENV/model" > "$SITE/evos-velocitas-model.pth"
# the model imports in the venv, and its paths are the catalog's
"$VENV/bin/python" - <<'EOF'
from vehicle import Vehicle, vehicle
from velocitas_sdk.model import DataPointFloat, DataPointInt8

assert isinstance(vehicle, Vehicle)
assert isinstance(vehicle.Speed, DataPointFloat) and vehicle.Speed.get_path() == "Vehicle.Speed"
seat = vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling
assert isinstance(seat, DataPointInt8) and seat.get_path() == "Vehicle.Cabin.Seat.Row1.DriverSide.HeatingCooling"
EOF
if [ -z "$CATALOG_ARG" ]; then  # the car's own signals are in the model too
    "$VENV/bin/python" -c 'from vehicle import vehicle; assert vehicle.Evos.Cabin.Scene.get_path() == "Vehicle.Evos.Cabin.Scene"'
fi
printf '%s\n' "$MODEL_STAMP" > "$MODEL_MARKER"
echo "velocitas_venv.sh: done ($(du -sh "$VENV" | cut -f1))" >&2
