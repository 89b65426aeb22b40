-- Why: joining a room hosted on another server brings the room's state and its auth chain
-- without the history in between. Those events are outliers (server-server API, "Retrieving
-- events"): kept for state and auth, never in a timeline, never sent on, never built on. The
-- first event of the room stored after them (the join) follows events this server does not
-- have, so the state before it cannot be derived from its prev events and is kept with it.
ALTER TABLE events ADD COLUMN outlier INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN state_before_group INTEGER REFERENCES state_groups(id);
