"""Write docs/configuration.md, the configuration-key reference, from the JSON schema.

The schema (pvc_core/config_schema.yaml, also config/schema.yaml) is the configuration's
documentation: every key's type, default and description live there. This script only lays them
out as one table per top-level section. Rerun it after editing the schema:

    .venv/bin/python docs/make_configuration.py
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "pvc_core" / "config_schema.yaml"
OUT = REPO / "docs" / "configuration.md"


def _resolve(node: dict, defs: dict) -> dict:
    """Merge a {$ref: '#/$defs/x', ...} node with the definition it names (local keys win)."""
    if "$ref" not in node:
        return node
    name = node["$ref"].split("/")[-1]
    merged = dict(_resolve(defs[name], defs))
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def _bounds(node: dict) -> str:
    parts = []
    for key, sym in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                     ("exclusiveMaximum", "<")):
        if key in node:
            parts.append(f"{sym} {node[key]}")
    return ", ".join(parts)


def _type(node: dict, defs: dict) -> str:
    node = _resolve(node, defs)
    if "anyOf" in node:
        return " or ".join(_type(n, defs) for n in node["anyOf"])
    if "const" in node:
        return f"`{node['const']}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type", "object")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array":
        items = _type(node.get("items", {}), defs)
        size = ""
        if node.get("minItems") == node.get("maxItems") and "minItems" in node:
            size = f" of {node['minItems']}"
        elif "minItems" in node:
            size = f" (at least {node['minItems']})"
        return f"array{size}: {items}"
    bounds = _bounds(node)
    return f"{kind} {bounds}" if bounds else kind


def _default(node: dict, required: bool) -> str:
    if required:
        return "required"
    if "default" not in node:
        return ""
    return "`" + json.dumps(node["default"], separators=(", ", ": ")) + "`"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _rows(path: str, node: dict, defs: dict, required: bool, out: list) -> None:
    node = _resolve(node, defs)
    out.append((path, _type(node, defs), _default(node, required), node.get("description", "")))
    props = node.get("properties", {})
    req = set(node.get("required", []))
    for key, sub in props.items():
        _rows(f"{path}.{key}", sub, defs, key in req, out)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        _rows(f"{path}.<name>", extra, defs, False, out)


def main() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    defs = schema.get("$defs", {})
    lines = [
        "# Configuration keys",
        "",
        "Generated from `pvc_core/config_schema.yaml` (linked as `config/schema.yaml`) by",
        "`.venv/bin/python docs/make_configuration.py`; edit the schema, not this page, then rerun it.",
        "Every configuration is validated against the schema before any job starts, and the",
        "defaults below are filled in. `<name>` stands for a key you choose. How the configurations",
        "are used: [user_guide.md](user_guide.md#configuration).",
        "",
    ]
    top_required = set(schema.get("required", []))
    scalars = []
    sections = []
    for key, sub in schema["properties"].items():
        if _resolve(sub, defs).get("type", "object") == "object":
            sections.append((key, sub))
        else:
            scalars.append((key, sub))
    header = ["| key | type | default | description |", "|---|---|---|---|"]

    lines += ["## Top level", ""] + header
    for key, sub in scalars:
        rows: list = []
        _rows(key, sub, defs, key in top_required, rows)
        lines += [f"| `{p}` | {_cell(t)} | {_cell(d)} | {_cell(s)} |" for p, t, d, s in rows]
    for key, sub in sections:
        rows = []
        _rows(key, sub, defs, key in top_required, rows)
        lines += ["", f"## `{key}`", ""] + header
        lines += [f"| `{p}` | {_cell(t)} | {_cell(d)} | {_cell(s)} |" for p, t, d, s in rows]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}: {sum(l.startswith('| `') for l in lines)} keys")


if __name__ == "__main__":
    main()
