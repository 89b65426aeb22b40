-- Why: events built by other servers (federation) can fork the room graph, pass the auth rules
-- at their place in it and still fail against the room's current state.

-- Soft-failed (server-server API, "Soft failure"): stored and usable as an auth or prev event by
-- later events, but never shown to clients and never a forward extremity.
ALTER TABLE events ADD COLUMN soft_failed INTEGER NOT NULL DEFAULT 0;

-- The room's current state after this event was appended, when state resolution made it differ
-- from the state after the event itself (`state_group`, which is what later events that name
-- this one in prev_events build on). NULL: the same. /sync reads the room's state at a stream
-- position through COALESCE(resolved_state_group, state_group).
ALTER TABLE events ADD COLUMN resolved_state_group INTEGER REFERENCES state_groups(id);
