#!/usr/bin/env python3
"""Bundle the Matrix client-server OpenAPI files into one self-contained document.

The spec is split over ~70 YAML files, each with its own `servers` base path
(/_matrix/client/v3, /_matrix/client/v1, /_matrix, /.well-known, ...) and with
`$ref`s into shared definitions and into ../../event-schemas. Schemathesis takes
one document with one server, so this script:

* prefixes every path with the base path its file declares, so all operations
  can live under a single server (the fuzzer's --url);
* resolves every `$ref`. Schemas referenced from elsewhere become named entries
  of components/schemas (shared error schemas would otherwise be copied a
  hundred times, and recursive event schemas could not be inlined at all);
  parameters, responses, request bodies, headers, examples and security schemes
  are inlined, because their names clash between files;
* fixes the few spots schemathesis cannot work with (listed in `fixups`).

Usage: bundle_spec.py [SPEC_CLIENT_SERVER_DIR] [-o OUTPUT]
The directory may also come from MATRIX_SPEC_CS_DIR. Output defaults to
client-server.json next to this script. Needs PyYAML (the fuzz venv has it,
schemathesis depends on it).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import unquote

import yaml

DEFAULT_DIR = "/work/shared/matrix-spec/data/api/client-server"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Keys whose values are instance data rather than subschemas: never walked for $refs.
SCHEMA_DATA_KEYS = {"example", "examples", "default", "enum", "const"}
# Keys that only annotate a schema; a $ref carrying only these can still be shared.
ANNOTATION_KEYS = {"description", "title", "summary", "example", "examples", "deprecated"}


class Bundler:
    def __init__(self, root: Path):
        # Everything the spec references lives under data/api and data/event-schemas.
        self.root = root.resolve()
        self.data_root = self.root.parent.parent
        self.files: dict[Path, object] = {}
        self.schemas: dict[str, object] = {}
        self.schema_names: dict[tuple[Path, str], str] = {}

    def load(self, path: Path):
        path = path.resolve()
        if path not in self.files:
            with open(path, encoding="utf-8") as f:
                self.files[path] = yaml.safe_load(f)
        return self.files[path]

    def target(self, ref: str, base: Path) -> tuple[Path, str]:
        file_part, _, pointer = ref.partition("#")
        path = (base.parent / file_part).resolve() if file_part else base.resolve()
        return path, pointer

    def lookup(self, path: Path, pointer: str):
        node = self.load(path)
        for token in filter(None, pointer.split("/")):
            token = unquote(token).replace("~1", "/").replace("~0", "~")
            node = node[int(token)] if isinstance(node, list) else node[token]
        return node

    def schema_name(self, path: Path, pointer: str) -> str:
        """A stable, readable component name: the file's path below data/ plus the pointer."""
        key = (path, pointer)
        if key not in self.schema_names:
            rel = path.relative_to(self.data_root).with_suffix("")
            parts = [p for p in rel.parts if p not in ("api", "client-server", "schema")]
            parts += [p for p in pointer.split("/") if p and p not in ("components", "schemas")]
            name = re.sub(r"[^A-Za-z0-9._-]", "_", ".".join(parts))
            taken = set(self.schema_names.values())
            unique, n = name, 2
            while unique in taken:
                unique, n = f"{name}_{n}", n + 1
            self.schema_names[key] = unique
        return self.schema_names[key]

    def walk(self, node, base: Path, in_schema: bool, stack: tuple = ()):
        """Returns a copy of `node` with every $ref resolved, relative to file `base`."""
        if isinstance(node, list):
            return [self.walk(v, base, in_schema, stack) for v in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return self.walk_ref(node, base, in_schema, stack)
        out = {}
        for key, value in node.items():
            if key.startswith("x-"):
                out[key] = copy.deepcopy(value)
            elif in_schema and key in SCHEMA_DATA_KEYS:
                out[key] = copy.deepcopy(value)
            elif in_schema and key == "properties":
                out[key] = {k: self.walk(v, base, True, stack) for k, v in value.items()}
            else:
                out[key] = self.walk(value, base, in_schema or key == "schema", stack)
        return out

    def walk_ref(self, node: dict, base: Path, in_schema: bool, stack: tuple):
        path, pointer = self.target(node["$ref"], base)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if in_schema:
            name = self.schema_name(path, pointer)
            if name not in self.schemas:
                self.schemas[name] = None  # placeholder: a recursive schema refers to itself
                self.schemas[name] = self.walk(self.lookup(path, pointer), path, True)
            ref = {"$ref": f"#/components/schemas/{name}"}
            if not siblings:
                return ref
            # In JSON Schema 2020-12 a $ref with siblings means "both apply": spell it
            # as allOf, which every schema-to-data generator understands.
            return {"allOf": [ref], **self.walk(siblings, base, True, stack)}
        key = (path, pointer)
        if key in stack:
            raise SystemExit(f"recursive non-schema $ref {node['$ref']} in {base}")
        resolved = self.walk(self.lookup(path, pointer), path, False, stack + (key,))
        if isinstance(resolved, dict):
            # OpenAPI 3.1 lets a Reference Object override summary/description.
            resolved = {**resolved, **{k: v for k, v in siblings.items() if k in ANNOTATION_KEYS}}
        return resolved


def base_path(doc: dict, filename: str) -> str:
    server = (doc.get("servers") or [{}])[0]
    default = server.get("variables", {}).get("basePath", {}).get("default")
    if default is None:
        raise SystemExit(f"{filename}: no servers[0].variables.basePath.default")
    return default.rstrip("/")


def merge_operations(a: dict, b: dict) -> dict:
    """One operation accepting what either of two same-URL spec operations accepts."""
    out = copy.deepcopy(a)
    out["operationId"] = f"{a['operationId']}_or_{b['operationId']}"
    out["summary"] = f"{a.get('summary', '')} / {b.get('summary', '')}"
    out["description"] = f"Merged from two spec operations on one URL.\n\n{a.get('description', '')}\n\n{b.get('description', '')}"
    # Parameters: all of them, each required only where both operations require it.
    a_params = {(p["in"], p["name"]): p for p in a.get("parameters", [])}
    b_params = {(p["in"], p["name"]): p for p in b.get("parameters", [])}
    out["parameters"] = []
    for key in {**a_params, **b_params}:
        p = copy.deepcopy(a_params.get(key) or b_params[key])
        p["required"] = all(params.get(key, {}).get("required", False) for params in (a_params, b_params))
        out["parameters"].append(p)
    # Bodies: either shape.
    if "requestBody" in a or "requestBody" in b:
        content = {}
        for op in (a, b):
            for media, body in op.get("requestBody", {}).get("content", {}).items():
                content.setdefault(media, []).append(body.get("schema", {}))
        out["requestBody"] = {
            "required": a.get("requestBody", {}).get("required", False) and b.get("requestBody", {}).get("required", False),
            "content": {m: {"schema": s[0] if len(s) == 1 else {"anyOf": s}} for m, s in content.items()},
        }
    out["responses"] = {**b.get("responses", {}), **a.get("responses", {})}
    if a.get("security") != b.get("security"):
        out["security"] = (a.get("security") or []) + [s for s in b.get("security") or [] if s not in (a.get("security") or [])]
    return out


def fixups(paths: dict) -> list[str]:
    """Edits for schemathesis; returns what was changed, for the document's info."""
    notes = []
    for path, item in paths.items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            params = op.get("parameters", [])
            # OpenAPI says a header parameter named Content-Type SHALL be ignored; schemathesis
            # would send it anyway, contradicting the body's real media type.
            kept = [p for p in params if not (p.get("in") == "header" and p.get("name", "").lower() == "content-type")]
            if len(kept) != len(params):
                op["parameters"] = kept
                notes.append(f"{method.upper()} {path}: dropped the Content-Type header parameter")
            # Uploads declare application/octet-stream with an untyped schema; schemathesis only
            # generates raw bytes for `type: string, format: binary`.
            for media, body in op.get("requestBody", {}).get("content", {}).items():
                if media == "application/octet-stream" and "type" not in body.get("schema", {}):
                    body["schema"] = {"type": "string", "format": "binary", "description": body.get("schema", {}).get("description", "")}
                    notes.append(f"{method.upper()} {path}: octet-stream body typed as binary string")
    return notes


def bundle(src: Path) -> dict:
    b = Bundler(src)
    paths: dict = {}
    security_schemes: dict = {}
    operation_ids: dict[str, str] = {}
    notes: list[str] = []
    for file in sorted(src.glob("*.yaml")):
        doc = b.load(file)
        if not isinstance(doc, dict) or "paths" not in doc:
            continue
        prefix = base_path(doc, file.name)
        for name, scheme in doc.get("components", {}).get("securitySchemes", {}).items():
            security_schemes[name] = b.walk(scheme, file, False)
        for sub, item in (doc.get("paths") or {}).items():
            # The spec writes "/rooms/{roomId}/invite " and "/events " with a trailing space to
            # keep two same-method endpoints apart in its own rendering; on the wire they are
            # one URL, so they get merged below.
            full = prefix + sub.strip()
            item = b.walk(item, file, False)
            # Path-level parameters: schemathesis handles them, but inlining them into each
            # operation keeps every operation readable on its own.
            shared = item.pop("parameters", [])
            for method, op in item.items():
                if method not in HTTP_METHODS:
                    continue
                names = {(p["in"], p["name"]) for p in op.get("parameters", [])}
                op["parameters"] = [p for p in shared if (p["in"], p["name"]) not in names] + op.get("parameters", [])
                op.setdefault("tags", [file.stem])
                # Schemathesis keys links and reports by operationId: keep them unique.
                op_id = op.get("operationId")
                if op_id in operation_ids:
                    op["operationId"] = f"{op_id}_{file.stem}"
                operation_ids[op["operationId"]] = full
            # Two files may describe different methods of one path (GET and PUT of a state
            # event live apart); the same method twice would be a spec bug.
            merged = paths.setdefault(full, {})
            for method, op in item.items():
                if method in merged:
                    notes.append(f"{method.upper()} {full}: {merged[method]['operationId']} and {op['operationId']} merged")
                    op = merge_operations(merged[method], op)
                merged[method] = op
    notes += fixups(paths)
    source = src.parent.parent.parent / "SOURCE.txt"
    commit = re.search(r"[0-9a-f]{40}", source.read_text()).group(0) if source.exists() else "unknown"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Matrix Client-Server API (bundled for fuzzing)",
            "version": f"matrix-spec {commit}",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            "description": (
                "Generated by tests/fuzz/bundle_spec.py from the matrix-org/matrix-spec OpenAPI files "
                f"(commit {commit}); do not edit by hand. Changes made for the fuzzer:\n- "
                + "\n- ".join(notes or ["none"])
            ),
        },
        "paths": paths,
        "components": {"securitySchemes": security_schemes, "schemas": dict(sorted(b.schemas.items()))},
    }


def main() -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec_dir", nargs="?", default=os.environ.get("MATRIX_SPEC_CS_DIR", DEFAULT_DIR))
    ap.add_argument("-o", "--output", default=str(here / "client-server.json"))
    args = ap.parse_args()
    doc = bundle(Path(args.spec_dir))
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    ops = sum(1 for item in doc["paths"].values() for m in item if m in HTTP_METHODS)
    print(f"{args.output}: {len(doc['paths'])} paths, {ops} operations, {len(doc['components']['schemas'])} shared schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main())
