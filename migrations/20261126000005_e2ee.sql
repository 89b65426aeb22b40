-- Why: end-to-end encryption. The server never sees message keys; it stores each device's
-- public identity keys and one-time keys for others to claim, relays to-device messages
-- (key sharing, verification) until the recipient device acknowledges them, and tells clients
-- whose device lists changed. Everything a device owns goes when the device is deleted.

-- The signed device keys a device uploaded (spec: POST /keys/upload, `device_keys`).
CREATE TABLE device_keys (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    keys      TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Unclaimed one-time keys; a claim deletes the row it hands out.
CREATE TABLE one_time_keys (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    key       TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- One fallback key per device and algorithm, handed out when no one-time key is left.
CREATE TABLE fallback_keys (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    key       TEXT NOT NULL,
    used      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, device_id, algorithm),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- To-device messages waiting for their device, in stream order. Deleted once the device syncs
-- with a token past them (it has them then). AUTOINCREMENT: positions are never reused after
-- the newest messages were deleted, or a device's old token would swallow new ones.
CREATE TABLE to_device_messages (
    stream_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    sender     TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content    TEXT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX to_device_recipient ON to_device_messages(user_id, device_id, stream_id);

-- Transaction IDs of PUT /sendToDevice, per sending device, so a retry is not delivered twice.
CREATE TABLE to_device_txns (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id    TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- Whose device list changed (keys uploaded, device added, renamed or deleted), in stream order:
-- the source of /sync's device_lists and /keys/changes.
CREATE TABLE device_list_changes (
    stream_id INTEGER PRIMARY KEY,
    user_id   TEXT NOT NULL
) STRICT;
CREATE INDEX device_list_changes_user ON device_list_changes(user_id, stream_id);

-- Every way a device comes, goes or is renamed is a device list change, whichever code path
-- did it (login, logout, deletion, deactivation, password change).
CREATE TRIGGER devices_added AFTER INSERT ON devices BEGIN
    INSERT INTO device_list_changes (user_id) VALUES (NEW.user_id);
END;
CREATE TRIGGER devices_removed AFTER DELETE ON devices BEGIN
    INSERT INTO device_list_changes (user_id) VALUES (OLD.user_id);
END;
CREATE TRIGGER devices_renamed AFTER UPDATE OF display_name ON devices
WHEN OLD.display_name IS NOT NEW.display_name BEGIN
    INSERT INTO device_list_changes (user_id) VALUES (NEW.user_id);
END;
