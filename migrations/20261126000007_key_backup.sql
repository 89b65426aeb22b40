-- Why: server-side key backup (spec: client-server API, "Server-side key backups"). Clients
-- store their room keys encrypted to a backup key the server never sees, so a new login can
-- read old history. Versions are never reused: a deleted version stays as a row.

CREATE TABLE backup_versions (
    user_id   TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    version   INTEGER NOT NULL,
    -- {"algorithm": ..., "auth_data": ...} as the client sent it.
    algorithm TEXT NOT NULL,
    -- Moves whenever the version's keys change.
    etag      INTEGER NOT NULL DEFAULT 0,
    deleted   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, version)
) STRICT, WITHOUT ROWID;

CREATE TABLE backup_keys (
    user_id             TEXT NOT NULL,
    version             INTEGER NOT NULL,
    room_id             TEXT NOT NULL,
    session_id          TEXT NOT NULL,
    first_message_index INTEGER NOT NULL,
    forwarded_count     INTEGER NOT NULL,
    is_verified         INTEGER NOT NULL,
    -- The KeyBackupData JSON (session_data is opaque to the server).
    data                TEXT NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id),
    FOREIGN KEY (user_id, version) REFERENCES backup_versions(user_id, version) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
