"""Schemathesis hooks for fuzzing Hearth's client-server API (loaded via SCHEMATHESIS_HOOKS).

run.sh exports the fixture it created before the run:
FUZZ_BASE_URL, FUZZ_USER (localpart), FUZZ_PASSWORD, FUZZ_ACCESS_TOKEN, FUZZ_USER_ID,
FUZZ_ROOM_ID, FUZZ_EVENT_ID, FUZZ_ROOM_ALIAS, FUZZ_MXC_URI, FUZZ_SERVER_NAME.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from urllib.parse import quote

import requests
import schemathesis
from hypothesis import strategies as st

ENV = os.environ
BASE = ENV["FUZZ_BASE_URL"].rstrip("/")
SERVER_NAME = ENV["FUZZ_SERVER_NAME"]


# --- Matrix identifier formats -------------------------------------------------------------
# The spec types IDs as strings with custom formats (mx-room-id, ...). Without a strategy the
# generator makes arbitrary strings, and nearly every request stops at the server's ID parser.
# Each format mixes the real IDs of the fixture (so handlers past the lookup get exercised) with
# well-formed random ones (unknown rooms, foreign servers).
def _ids(real: str | None, pattern: str) -> st.SearchStrategy:
    random = st.from_regex(pattern, fullmatch=True)
    return st.one_of(st.just(real), random) if real else random


_LOCAL = r"[a-z0-9._=/-]{1,16}"
_HOST = r"(localhost|[a-z][a-z0-9-]{0,12}(\.[a-z]{2,5})?)(:[1-9][0-9]{0,3})?"
FORMATS = {
    "mx-user-id": _ids(ENV.get("FUZZ_USER_ID"), rf"@{_LOCAL}:{_HOST}"),
    "mx-room-id": _ids(ENV.get("FUZZ_ROOM_ID"), rf"![A-Za-z0-9]{{1,18}}(:{_HOST})?"),
    "mx-event-id": _ids(ENV.get("FUZZ_EVENT_ID"), r"\$[A-Za-z0-9_-]{1,43}"),
    "mx-room-alias": _ids(ENV.get("FUZZ_ROOM_ALIAS"), rf"#{_LOCAL}:{_HOST}"),
    "mx-server-name": _ids(SERVER_NAME, _HOST),
    "mx-mxc-uri": _ids(ENV.get("FUZZ_MXC_URI"), rf"mxc://{_HOST}/[A-Za-z0-9_-]{{1,24}}"),
    "mx-unpadded-base64": st.from_regex(r"[A-Za-z0-9+/]{0,64}", fullmatch=True),
    "mx-urlsafe-unpadded-base64": st.from_regex(r"[A-Za-z0-9_-]{0,64}", fullmatch=True),
}
for name, strategy in FORMATS.items():
    schemathesis.openapi.format(name, strategy)


# --- Long polls ---------------------------------------------------------------------------
# /sync, /events, media downloads and friends wait up to `timeout`/`timeout_ms` milliseconds.
# Generated values are often huge, and each such case would just sit out the request timeout;
# keep the value's type and sign (what the parser sees) but bound the wait.
def _bounded(query: dict, path: str) -> dict:
    # /events (the legacy stream) waits 30 s when no timeout is given, as Synapse does.
    if path.endswith("/events") and "timeout" not in query:
        query["timeout"] = 0
    for key in ("timeout", "timeout_ms"):
        value = query.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 200:
            query[key] = value % 200
        elif isinstance(value, str) and value.isdigit() and int(value) > 200:
            query[key] = str(int(value) % 200)
    return query


@schemathesis.hook
def map_query(context, query):
    if not isinstance(query, dict):
        return query
    path = getattr(getattr(context, "operation", None), "path", "") or ""
    return _bounded(query, path)


# map_query only sees generated query strings: a case generated without one (a bare GET
# /events) is bounded here, just before it is sent.
@schemathesis.hook
def before_call(context, case, **kwargs):
    if case.query is None or isinstance(case.query, dict):
        case.query = _bounded(dict(case.query or {}), case.path or "")


# --- Authentication and the fixture room -------------------------------------------------
# The fuzzer calls /logout, /logout/all and device deletion too, each of which kills the
# token; everything tested after that would only see 401s. On a 401 schemathesis asks this
# provider again and replays the request once; `get` then checks the token with /whoami and
# only when it is really dead logs in afresh (or, should the fuzzer have managed to change the
# password or deactivate the account, registers a brand new account). User-interactive auth
# answers 401 by design: there the token is alive, nothing is renewed, and schemathesis stops
# replaying for that operation once the replay gets the same 401.
# Likewise the fuzzer makes the account leave, forget or kick itself from the fixture room,
# after which every room operation is a 403; `get` also runs every few seconds (the cache
# lifetime) and joins the (public) room again.
_lock = threading.Lock()
_state = {"token": ENV["FUZZ_ACCESS_TOKEN"], "user": ENV["FUZZ_USER"], "password": ENV["FUZZ_PASSWORD"]}


def _alive(token: str) -> bool:
    try:
        r = requests.get(f"{BASE}/_matrix/client/v3/account/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        return r.status_code == 200
    except requests.RequestException:
        return False


def _login(user: str, password: str) -> str | None:
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}
    r = requests.post(f"{BASE}/_matrix/client/v3/login", json=body, timeout=10)
    return r.json().get("access_token") if r.status_code == 200 else None


def _register() -> tuple[str, str]:
    user = f"fuzz-{uuid.uuid4().hex[:12]}"
    body = {"username": user, "password": _state["password"], "auth": {"type": "m.login.dummy"}}
    r = requests.post(f"{BASE}/_matrix/client/v3/register", json=body, timeout=10)
    r.raise_for_status()
    return user, r.json()["access_token"]


def _join_fixture_room(token: str) -> None:
    room = ENV.get("FUZZ_ROOM_ID")
    if room:
        requests.post(
            f"{BASE}/_matrix/client/v3/join/{quote(room, safe='')}", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )


@schemathesis.auth(refresh_interval=5, retry_on=[401])
class MatrixToken:
    def get(self, case, context):
        with _lock:
            if not _alive(_state["token"]):
                token = _login(_state["user"], _state["password"])
                if token is None:
                    _state["user"], token = _register()
                    print(f"hooks: {ENV['FUZZ_USER']} cannot log in any more; continuing as {_state['user']}", file=sys.stderr)
                _state["token"] = token
            _join_fixture_room(_state["token"])
            return _state["token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
