-- Why: other servers' users' device lists, kept here while they share a room with a user of
-- this server (spec: server-server API, "Device Management"). A local client's /keys/query for
-- them is answered from here, so encrypted messages go on when their server is slow or down,
-- and the list follows their server's `m.device_list_update` EDUs: an update that continues the
-- list (its `prev_id`s are all known) is applied; one after a gap marks the list stale, and it
-- is fetched whole again (`/user/devices`) before it is used.
CREATE TABLE remote_device_lists (
    user_id          TEXT PRIMARY KEY,
    -- The position of the list (the `stream_id` of the last update applied, or the one
    -- `/user/devices` answered).
    stream_id        INTEGER NOT NULL,
    stale            INTEGER NOT NULL DEFAULT 0,
    master_key       TEXT,
    self_signing_key TEXT,
    fetched_ts       INTEGER NOT NULL
) STRICT;
CREATE TABLE remote_devices (
    user_id      TEXT NOT NULL REFERENCES remote_device_lists(user_id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL,
    -- The device keys as signed by the device (JSON), with the display name in `unsigned`.
    keys         TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id)
) STRICT, WITHOUT ROWID;
