#!/usr/bin/env python3
"""Turns schemathesis' NDJSON event log into the fuzz suite's verdict.

Schemathesis' own summary groups failures by check; this lists every operation that answered
5xx, each with its smallest failing requests (as curl commands that work against the same
Hearth), every operation that got no test case at all, with the reason, the operations Hearth
has no handler for, and the distinct panics and errors in Hearth's log. Exit status 1 when any
operation answered 5xx or the run did not finish.

Usage: summarize.py SCHEMA.json EVENTS.ndjson [HEARTH.log]
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import sys
from collections import defaultdict

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Reproductions shown per operation; the NDJSON has them all.
SHOWN = 3
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def decode(blob) -> bytes | None:
    if blob is None:
        return None
    if isinstance(blob, dict) and "$base64" in blob:
        return base64.b64decode(blob["$base64"])
    return json.dumps(blob).encode() if not isinstance(blob, str) else blob.encode()


def errcode(response: dict) -> str | None:
    try:
        body = json.loads(decode(response.get("content")) or b"")
    except ValueError:
        return None
    return body.get("errcode") if isinstance(body, dict) else None


def curl(request: dict) -> str:
    parts = ["curl", "-i", "-X", request["method"]]
    for name, values in (request.get("headers") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            parts += ["-H", f"{name}: {value}"]
    command = " ".join(shlex.quote(p) for p in parts)
    uri = shlex.quote(request["uri"])
    body = decode(request.get("body"))
    if body is None:
        return f"{command} {uri}"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    # curl reads a body starting with @ as a file name, and a shell variable cannot hold NUL
    # bytes: such bodies are piped from printf, which reproduces any byte exactly.
    if text is not None and not text.startswith("@") and "\0" not in text:
        return f"{command} --data-binary {shlex.quote(text)} {uri}"
    escaped = "".join(f"\\x{b:02x}" for b in body)
    return f"printf '{escaped}' | {command} --data-binary @- {uri}"


def main(schema_path: str, events_path: str, log_path: str | None = None) -> int:
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    all_ops = [f"{m.upper()} {p}" for p, item in schema["paths"].items() for m in item if m in HTTP_METHODS]

    counts = None  # {"total": .., "selected": ..}
    scenarios: set[str] = set()  # operations the engine got to, tested or skipped
    ran = defaultdict(int)  # label -> cases sent
    answers = defaultdict(set)  # label -> {(status, errcode)}
    skipped = defaultdict(set)  # label -> reasons
    errors = defaultdict(list)  # label -> messages
    failures = defaultdict(list)  # label -> (body size, status, request, response excerpt)
    finished = None
    fatal = []
    with open(events_path, encoding="utf-8") as f:
        for line in f:
            event = json.loads(line)
            kind, data = next(iter(event.items()))
            if kind == "LoadingFinished":
                counts = data.get("statistic", {}).get("operations")
            elif kind == "ScenarioFinished":
                recorder = data["recorder"]
                label = recorder["label"]
                scenarios.add(label)
                interactions = recorder.get("interactions", {})
                ran[label] += len(interactions)
                if data.get("status") == "skip" and data.get("skip_reason"):
                    skipped[label].add(f"{data['phase']}: {data['skip_reason']}")
                for interaction in interactions.values():
                    response = interaction.get("response")
                    if response:
                        answers[label].add((response["status_code"], errcode(response)))
                for case_id, checks in recorder.get("checks", {}).items():
                    if not any(c["name"] == "not_a_server_error" and c["status"] == "failure" for c in checks):
                        continue
                    interaction = interactions.get(case_id)
                    if not interaction or not interaction.get("response"):
                        continue
                    response = interaction["response"]
                    body = decode(interaction["request"].get("body")) or b""
                    excerpt = (decode(response.get("content")) or b"").decode("utf-8", "replace")[:200]
                    failures[label].append((len(body), response["status_code"], interaction["request"], excerpt))
            elif kind == "NonFatalError":
                value = data.get("value") or {}
                errors[data.get("label", "?")].append(f"{value.get('type', '')}: {value.get('message', '')}".strip(": "))
            elif kind == "FatalError":
                fatal.append(json.dumps(data.get("exception")))
            elif kind == "EngineFinished":
                finished = data

    out = sys.stdout
    total_cases = sum(ran.values())
    tested = [op for op in all_ops if ran.get(op)]
    out.write("\n==================== Hearth fuzz summary ====================\n")
    if finished:
        out.write(f"schemathesis ran {finished['running_time']:.0f} s, stop reason: {finished['stop_reason']}\n")
    out.write(f"operations: {len(all_ops)} in the schema, {len(tested)} tested, {total_cases} requests sent\n")

    out.write(f"\n-- operations that answered 5xx: {len(failures)}\n")
    for label in sorted(failures):
        cases = sorted(failures[label], key=lambda c: (c[0], c[1]))
        statuses = sorted({c[1] for c in cases})
        out.write(f"\n{label}: {len(cases)} case(s), status {', '.join(map(str, statuses))}\n")
        # The smallest distinct requests first: the least to read when hunting the cause.
        seen = set()
        for _, status, request, excerpt in cases:
            command = curl(request)
            if command in seen:
                continue
            seen.add(command)
            out.write(f"  [{status}] {excerpt!r}\n    {command}\n")
            if len(seen) == SHOWN:
                break

    untested = [op for op in all_ops if not ran.get(op)]
    out.write(f"\n-- operations with no test case: {len(untested)}\n")
    for op in untested:
        if op not in scenarios and counts and counts["selected"] < counts["total"]:
            reasons = ["not selected by the run's filters"]
        else:
            reasons = sorted(skipped.get(op, ())) + errors.get(op, []) or ["no reason recorded"]
        out.write(f"  {op}: {'; '.join(reasons)}\n")

    # Tested, but only against the router's fallback: Hearth has no handler for these. The
    # coverage phase's probes with other methods (405, and 204 for OPTIONS) do not count.
    unrouted = [
        op for op in all_ops
        if ran.get(op) and any(code == "M_UNRECOGNIZED" for _, code in answers[op])
        and all(code == "M_UNRECOGNIZED" or status in (204, 405) for status, code in answers[op])
    ]
    out.write(f"\n-- operations Hearth does not implement (every answer 404 M_UNRECOGNIZED): {len(unrouted)}\n")
    for op in unrouted:
        out.write(f"  {op}\n")

    other = {k: v for k, v in errors.items() if ran.get(k)}
    if other:
        out.write(f"\n-- errors in tested operations (not 5xx, listed for information): {len(other)}\n")
        for label in sorted(other):
            for message in sorted(set(other[label]))[:3]:
                out.write(f"  {label}: {message[:300]}\n")

    if log_path:
        # Hearth's 500 body is always the same; its log says what broke. Requests and log lines
        # cannot be matched one to one, so this lists each distinct cause with its count.
        causes = defaultdict(int)
        with open(log_path, encoding="utf-8", errors="replace") as f:
            lines = [ANSI.sub("", line).rstrip() for line in f]
        for i, line in enumerate(lines):
            if " panicked at " in line:
                message = lines[i + 1] if i + 1 < len(lines) else ""
                causes[f"panic at {line.split(' panicked at ', 1)[1]} {message}"] += 1
            elif " ERROR " in line and "handler panicked" not in line:
                causes[re.sub(r"^\S+\s+ERROR\s+", "", line)] += 1
        out.write(f"\n-- errors in Hearth's log: {len(causes)} distinct\n")
        for cause, count in sorted(causes.items(), key=lambda c: -c[1]):
            out.write(f"  {count:5d}x {cause[:400]}\n")

    if fatal or not finished:
        out.write("\nthe run did not finish: " + ("; ".join(fatal) or "no EngineFinished event") + "\n")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
