"""Build evos' default catalog (src/evos/vss/data/vss-6.0.json) from the VSS 6.0 JSON export.

The shipped file keeps the facts of every node (type, datatype, unit, min, max, allowed, default, ...)
and drops the description and comment texts; users who want those load the full export with --vss.

    python scripts/build_vss_catalog.py ../shared/data/vss/vss_release_6.0.json
"""

import json
import sys
from pathlib import Path

DROP = {"description", "comment", "uuid"}
OUT = Path(__file__).resolve().parents[1] / "src/evos/vss/data/vss-6.0.json"


def strip(node: dict) -> dict:
    out = {k: v for k, v in node.items() if k not in DROP and k != "children"}
    if "children" in node:
        out["children"] = {name: strip(child) for name, child in node["children"].items()}
    return out


def main(source: str) -> None:
    tree = json.loads(Path(source).read_text("utf-8"))
    OUT.write_text(json.dumps({k: strip(v) for k, v in tree.items()}, separators=(",", ":")) + "\n", "utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
