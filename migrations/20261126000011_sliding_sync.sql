-- Simplified sliding sync (MSC4186): what each connection (user, device, conn_id) has been
-- sent, so an incremental request sends only what changed, a retried `pos` is answered again,
-- and a restart of the server does not force clients to start over.
CREATE TABLE sliding_sync_connections (
    -- AUTOINCREMENT: an id is never reused, so a position of a connection that was started
    -- over can never become valid again.
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    conn_id      TEXT NOT NULL,
    last_used_ts INTEGER NOT NULL,
    UNIQUE (user_id, device_id, conn_id)
) STRICT;

-- The positions a client may still send: the one it was last given and, until it uses that one,
-- earlier ones (a request lost on the way is retried with the same `pos`).
CREATE TABLE sliding_sync_positions (
    connection_id INTEGER NOT NULL,
    pos           INTEGER NOT NULL,
    -- The stream positions the answer was built up to (a /sync token).
    token         TEXT NOT NULL,
    -- JSON: per room, the event position the client is up to date with and the room config
    -- (timeline_limit, required_state) it was last sent with.
    rooms         TEXT NOT NULL,
    PRIMARY KEY (connection_id, pos)
) STRICT;
