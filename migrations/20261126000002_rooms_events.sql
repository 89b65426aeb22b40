-- Why: rooms and their events. Every event is stored as the complete signed PDU of its room
-- version (so federation only adds transport), with the columns sync and pagination filter on.
-- Room state is kept as state groups that share structure: a group is a delta against its
-- parent group, and a full copy is taken only every so often, so a room with 10,000 state events
-- does not cost a full copy of its state per new event (docs/ARCHITECTURE.md, "Room state").

CREATE TABLE rooms (
    room_id      TEXT PRIMARY KEY NOT NULL,
    room_version TEXT NOT NULL,
    creator      TEXT NOT NULL,
    created_ts   INTEGER NOT NULL,
    -- Published in the room directory.
    is_public    INTEGER NOT NULL DEFAULT 0,
    -- The state group of the current state (after the latest event).
    current_state_group INTEGER
) STRICT;

-- A snapshot of room state: the entries of `state_group_entries` for this group on top of the
-- full state of `prev_group` (NULL: the entries are the whole state).
CREATE TABLE state_groups (
    id         INTEGER PRIMARY KEY,
    room_id    TEXT NOT NULL REFERENCES rooms(room_id),
    prev_group INTEGER REFERENCES state_groups(id),
    -- Number of deltas between this group and the nearest full snapshot.
    chain_len  INTEGER NOT NULL
) STRICT;

CREATE TABLE state_group_entries (
    state_group INTEGER NOT NULL REFERENCES state_groups(id),
    event_type  TEXT NOT NULL,
    state_key   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    PRIMARY KEY (state_group, event_type, state_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE events (
    -- Position in the server-wide event stream: /sync tokens and timeline order.
    stream_ordering  INTEGER PRIMARY KEY,
    event_id         TEXT NOT NULL UNIQUE,
    room_id          TEXT NOT NULL REFERENCES rooms(room_id),
    event_type       TEXT NOT NULL,
    state_key        TEXT,
    sender           TEXT NOT NULL,
    origin_server_ts INTEGER NOT NULL,
    depth            INTEGER NOT NULL,
    -- The signed PDU, canonical JSON, exactly as it would be sent over federation.
    pdu              TEXT NOT NULL,
    -- Failed the auth rules: kept for state resolution, never shown, never part of state.
    rejected         INTEGER NOT NULL DEFAULT 0,
    -- The state of the room after this event (before it, for non-state events it is the same).
    state_group      INTEGER REFERENCES state_groups(id),
    -- Once a redaction applied: its event ID, and the client view of the redacted event (the
    -- original stays in `pdu` for federation until it is purged).
    redacted_by      TEXT,
    redacted_json    TEXT,
    -- The device that sent it and its transaction ID, for `unsigned.transaction_id` and
    -- idempotent sends.
    txn_user_id      TEXT,
    txn_device_id    TEXT,
    txn_id           TEXT
) STRICT;
CREATE INDEX events_room_stream ON events(room_id, stream_ordering);
CREATE INDEX events_room_state ON events(room_id, event_type, state_key) WHERE state_key IS NOT NULL;
-- Per-device idempotency of PUT /send/{txnId} (spec: "Transaction identifiers").
CREATE UNIQUE INDEX events_txn ON events(txn_user_id, txn_device_id, txn_id) WHERE txn_id IS NOT NULL;

CREATE TABLE event_edges (
    event_id      TEXT NOT NULL,
    prev_event_id TEXT NOT NULL,
    PRIMARY KEY (event_id, prev_event_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE event_auth (
    event_id      TEXT NOT NULL,
    auth_event_id TEXT NOT NULL,
    PRIMARY KEY (event_id, auth_event_id)
) STRICT, WITHOUT ROWID;

-- The events of a room that no event refers to yet: the next event's prev_events.
CREATE TABLE forward_extremities (
    room_id  TEXT NOT NULL REFERENCES rooms(room_id),
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
) STRICT, WITHOUT ROWID;

-- The current state of each room, denormalised from the state groups for fast reads.
CREATE TABLE current_state (
    room_id    TEXT NOT NULL REFERENCES rooms(room_id),
    event_type TEXT NOT NULL,
    state_key  TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    PRIMARY KEY (room_id, event_type, state_key)
) STRICT, WITHOUT ROWID;

-- Current membership of every user in each room, for /joined_rooms, /members and /sync.
CREATE TABLE memberships (
    room_id         TEXT NOT NULL REFERENCES rooms(room_id),
    user_id         TEXT NOT NULL,
    membership      TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    stream_ordering INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX memberships_user ON memberships(user_id, membership);

CREATE TABLE room_aliases (
    alias   TEXT PRIMARY KEY NOT NULL,
    room_id TEXT NOT NULL REFERENCES rooms(room_id),
    creator TEXT NOT NULL
) STRICT;
CREATE INDEX room_aliases_room ON room_aliases(room_id);

-- Filters uploaded by clients (POST /user/{userId}/filter) and used by ID in /sync.
CREATE TABLE filters (
    user_id   TEXT NOT NULL,
    filter_id INTEGER NOT NULL,
    filter    TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
) STRICT;

-- Global (room_id = '') and per-room account data (spec: "Client Config"), with a stream
-- position so /sync sends only what changed.
CREATE TABLE account_data (
    user_id    TEXT NOT NULL,
    room_id    TEXT NOT NULL DEFAULT '',
    data_type  TEXT NOT NULL,
    content    TEXT NOT NULL,
    stream_id  INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, data_type)
) STRICT;
CREATE INDEX account_data_stream ON account_data(user_id, stream_id);

-- Read receipts (spec: "Receipts"), the latest per user, type and thread, on their own stream.
CREATE TABLE receipts (
    room_id      TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    thread_id    TEXT NOT NULL DEFAULT '',
    event_id     TEXT NOT NULL,
    ts           INTEGER NOT NULL,
    stream_id    INTEGER NOT NULL,
    PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
) STRICT;
CREATE INDEX receipts_stream ON receipts(room_id, stream_id);

-- Relations between events (spec: "Forming relationships between events"): edits, reactions,
-- references, threads. Filled when an event with `m.relates_to` is stored.
CREATE TABLE event_relations (
    event_id        TEXT PRIMARY KEY NOT NULL,
    relates_to_id   TEXT NOT NULL,
    rel_type        TEXT NOT NULL,
    room_id         TEXT NOT NULL,
    sender          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    stream_ordering INTEGER NOT NULL
) STRICT;
CREATE INDEX event_relations_parent ON event_relations(relates_to_id, rel_type, stream_ordering);
CREATE INDEX event_relations_room_threads ON event_relations(room_id, rel_type, stream_ordering);

-- What each user's push rules said about each event (spec: "Push Rules", server behaviour):
-- the source of unread counts in /sync, of /notifications and of push gateway deliveries.
CREATE TABLE event_push_actions (
    event_id        TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    room_id         TEXT NOT NULL,
    stream_ordering INTEGER NOT NULL,
    thread_id       TEXT NOT NULL DEFAULT '',
    highlight       INTEGER NOT NULL,
    actions         TEXT NOT NULL,
    ts              INTEGER NOT NULL,
    PRIMARY KEY (event_id, user_id)
) STRICT;
CREATE INDEX event_push_actions_user_room ON event_push_actions(user_id, room_id, stream_ordering);
CREATE INDEX event_push_actions_user ON event_push_actions(user_id, stream_ordering);

-- Pushers (spec: "Push Notifications"): where to send a user's notifications, as the client set
-- them (the whole pusher, as JSON).
CREATE TABLE pushers (
    user_id    TEXT NOT NULL,
    app_id     TEXT NOT NULL,
    pushkey    TEXT NOT NULL,
    pusher     TEXT NOT NULL,
    created_ts INTEGER NOT NULL,
    PRIMARY KEY (app_id, pushkey, user_id)
) STRICT;
CREATE INDEX pushers_user ON pushers(user_id);

-- Reports of events, rooms and users (spec: "Reporting content"), for the server admin.
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY,
    reporter    TEXT NOT NULL,
    room_id     TEXT,
    event_id    TEXT,
    target_user TEXT,
    reason      TEXT,
    ts          INTEGER NOT NULL
) STRICT;

-- Full-text search over message bodies, room names and topics (spec: "Server Side Search").
CREATE VIRTUAL TABLE events_fts USING fts5(
    body,
    event_id UNINDEXED,
    room_id UNINDEXED,
    stream_ordering UNINDEXED,
    search_key UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
);
