"""Regenerate evos' sdv.databroker.v1 modules (src/evos/broker/sdv_v1/*_pb2*.py) from the vendored .proto files.

The protos are kuksa-databroker's, tag 0.6.1 (see src/evos/broker/sdv_v1/proto/README.md); grpcio-tools generates
the code, and its absolute imports (``from sdv.databroker.v1 import types_pb2``) are pointed at
``evos.broker.sdv_v1`` so the package has no top-level ``sdv`` of its own. Run: ``python scripts/gen_sdv_v1.py``.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "evos" / "broker" / "sdv_v1"
PROTOS = PACKAGE / "proto"
NAMES = ("types", "broker", "collector")


def generate(out: Path) -> None:
    """Write the generated modules of every proto into ``out`` (flat, imports rewritten)."""
    with tempfile.TemporaryDirectory() as tmp:
        well_known = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/timestamp.proto
        args = ["protoc", f"-I{PROTOS}", f"-I{well_known}",
                f"--python_out={tmp}", f"--pyi_out={tmp}", f"--grpc_python_out={tmp}",
                *(str(PROTOS / "sdv" / "databroker" / "v1" / f"{name}.proto") for name in NAMES)]
        if protoc.main(args) != 0:
            sys.exit("protoc failed")
        for made in sorted((Path(tmp) / "sdv" / "databroker" / "v1").iterdir()):
            if made.name.endswith("_pb2_grpc.py") and "Stub" not in made.read_text():
                continue  # types.proto has no service
            text = re.sub(r"^from sdv\.databroker\.v1 import", "from evos.broker.sdv_v1 import", made.read_text(),
                          flags=re.MULTILINE)
            (out / made.name).write_text(text)


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE)
