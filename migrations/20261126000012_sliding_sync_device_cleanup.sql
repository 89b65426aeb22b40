-- Sliding sync connections go with their device (logout, device deletion, password change), as
-- the device's other data does, instead of lingering until they expire after a week.
CREATE TRIGGER devices_removed_sliding_sync AFTER DELETE ON devices BEGIN
    DELETE FROM sliding_sync_positions WHERE connection_id IN
        (SELECT id FROM sliding_sync_connections WHERE user_id = OLD.user_id AND device_id = OLD.device_id);
    DELETE FROM sliding_sync_connections WHERE user_id = OLD.user_id AND device_id = OLD.device_id;
END;

-- Connections of devices removed before this trigger existed.
DELETE FROM sliding_sync_positions WHERE connection_id IN
    (SELECT c.id FROM sliding_sync_connections c
     WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.user_id = c.user_id AND d.device_id = c.device_id));
DELETE FROM sliding_sync_connections WHERE NOT EXISTS
    (SELECT 1 FROM devices d WHERE d.user_id = sliding_sync_connections.user_id AND d.device_id = sliding_sync_connections.device_id);
