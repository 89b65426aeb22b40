-- Why: Synapse's admin API hands an admin an access token for another user (`users/{id}/login`,
-- to act for them). Its session needs a device row (tokens belong to devices), but it must not
-- show as one of the user's devices, nor be announced to the people who share rooms with them
-- (their apps would see a new, unverified device). Such devices are hidden.
ALTER TABLE devices ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER devices_added;
DROP TRIGGER devices_removed;
DROP TRIGGER devices_renamed;
CREATE TRIGGER devices_added AFTER INSERT ON devices WHEN NEW.hidden = 0 BEGIN
    INSERT INTO device_list_changes (user_id, device_id) VALUES (NEW.user_id, NEW.device_id);
END;
CREATE TRIGGER devices_removed AFTER DELETE ON devices WHEN OLD.hidden = 0 BEGIN
    INSERT INTO device_list_changes (user_id, device_id) VALUES (OLD.user_id, OLD.device_id);
END;
CREATE TRIGGER devices_renamed AFTER UPDATE OF display_name ON devices
WHEN OLD.display_name IS NOT NEW.display_name AND NEW.hidden = 0 BEGIN
    INSERT INTO device_list_changes (user_id, device_id) VALUES (NEW.user_id, NEW.device_id);
END;
