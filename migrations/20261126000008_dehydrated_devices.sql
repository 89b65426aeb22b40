-- Why: dehydrated devices (MSC3814, which matrix-rust-sdk and Element use): a device kept on
-- the server, its secrets encrypted by the user, that receives room keys while all the user's
-- real devices are offline; a new login "rehydrates" it and takes its to-device messages.
-- It is a row in `devices` (so keys and to-device messages work as for any device, and go
-- with it); this table marks which one it is, at most one per user.
CREATE TABLE dehydrated_devices (
    user_id     TEXT PRIMARY KEY NOT NULL,
    device_id   TEXT NOT NULL,
    -- The client's encrypted pickle, opaque to the server.
    device_data TEXT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) STRICT;
