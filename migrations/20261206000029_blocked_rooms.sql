-- Rooms a server admin blocked (Synapse's admin API `rooms/{roomId}/block`): nobody here may
-- join, be invited or knock while the row is there; the admin who blocked it is kept.
CREATE TABLE blocked_rooms (
    room_id    TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL,
    blocked_ts INTEGER NOT NULL
) WITHOUT ROWID;
