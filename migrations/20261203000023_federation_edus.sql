-- Why: EDUs to and from other servers (spec: server-server API, "EDUs").
--
-- A device list change now says which device changed (NULL: the user's cross-signing keys),
-- so the federation sender can tell other servers what changed (`m.device_list_update` for a
-- device, `m.signing_key_update` for the keys). Remote users' changes, learnt from their
-- servers, go into the same stream, so local clients see them in /sync's device_lists.
ALTER TABLE device_list_changes ADD COLUMN device_id TEXT;

DROP TRIGGER devices_added;
DROP TRIGGER devices_removed;
DROP TRIGGER devices_renamed;
CREATE TRIGGER devices_added AFTER INSERT ON devices BEGIN
    INSERT INTO device_list_changes (user_id, device_id) VALUES (NEW.user_id, NEW.device_id);
END;
CREATE TRIGGER devices_removed AFTER DELETE ON devices BEGIN
    INSERT INTO device_list_changes (user_id, device_id) VALUES (OLD.user_id, OLD.device_id);
END;
CREATE TRIGGER devices_renamed AFTER UPDATE OF display_name ON devices
WHEN OLD.display_name IS NOT NEW.display_name BEGIN
    INSERT INTO device_list_changes (user_id, device_id) VALUES (NEW.user_id, NEW.device_id);
END;

-- How far each destination got in the device list stream (as `stream_position` for events):
-- the local users' changes after it, for users sharing a room with it, are still to be sent.
ALTER TABLE federation_destinations ADD COLUMN device_list_position INTEGER NOT NULL DEFAULT 0;

-- EDUs that must not be lost (to-device messages: Olm key shares), per destination, sent in
-- `id` order and deleted once the destination accepted the transaction that carried them.
CREATE TABLE federation_outbox_edus (
    id          INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    edu         TEXT NOT NULL
) STRICT;
CREATE INDEX federation_outbox_edus_destination ON federation_outbox_edus(destination, id);

-- To-device messages received from other servers, by (origin, message_id): a transaction sent
-- again delivers them once. Pruned after a day (retries come within minutes).
CREATE TABLE federation_inbox_to_device (
    origin      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    received_ts INTEGER NOT NULL,
    PRIMARY KEY (origin, message_id)
) STRICT, WITHOUT ROWID;

-- Destinations known before this migration start at the current head (the changes before it
-- were never promised to anyone).
UPDATE federation_destinations SET device_list_position = (SELECT IFNULL(MAX(stream_id), 0) FROM device_list_changes);
