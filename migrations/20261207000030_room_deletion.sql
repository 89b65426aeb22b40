-- Why: Synapse's admin API deletes rooms (and purges history) in the background and answers how
-- each run went by its ID (`v2/rooms/.../delete_status`). The runs are kept here so that answer
-- survives a restart, and a run a restart interrupted is started again (each step of a room
-- deletion can be repeated). Finished runs are dropped after a week, as in Synapse.
CREATE TABLE admin_tasks (
    id         TEXT PRIMARY KEY NOT NULL,
    action     TEXT NOT NULL,   -- 'shutdown_and_purge_room'
    room_id    TEXT NOT NULL,
    status     TEXT NOT NULL,   -- 'scheduled', 'active', 'complete', 'failed'
    params     TEXT NOT NULL,   -- JSON
    result     TEXT,            -- JSON, updated as the run goes
    error      TEXT,
    created_ts INTEGER NOT NULL,
    updated_ts INTEGER NOT NULL
) STRICT;
CREATE INDEX admin_tasks_room ON admin_tasks(room_id, created_ts);

-- Why: a purge deletes a room's events, and with them the leave events of its local members.
-- A member's device that was offline while the room went would never hear it left, and would
-- show the room forever. Each local member's last membership event (a leave or ban) is kept
-- here, with its stream position, so an incremental /sync from before it still delivers it.
CREATE TABLE purged_memberships (
    user_id         TEXT NOT NULL,
    room_id         TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    stream_ordering INTEGER NOT NULL,
    pdu             TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
) STRICT, WITHOUT ROWID;
