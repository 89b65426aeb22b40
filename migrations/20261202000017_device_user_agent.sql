-- The User-Agent a device was last seen with (with last_seen_ip and last_seen_ts), for the
-- spec's admin whois (`connections[].user_agent`) and for telling devices apart.
ALTER TABLE devices ADD COLUMN last_seen_user_agent TEXT;
