-- Why: a user of another server who joins, leaves or knocks through this server hands it the
-- event (`send_join`, `send_leave`, `send_knock`); the spec has the resident server send it on
-- to the room's other servers, which the federation sender otherwise does only for events of
-- this server's users.
ALTER TABLE events ADD COLUMN relay INTEGER NOT NULL DEFAULT 0;
