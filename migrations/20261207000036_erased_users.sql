-- Why: an account deactivated with `erase` (the client's /account/deactivate and Synapse's admin
-- API, as a person's "right to be forgotten") has its messages shown only in their redacted form
-- to anyone who was not in the room when they were sent. Reactivation lifts it, as in Synapse.
ALTER TABLE users ADD COLUMN erased INTEGER NOT NULL DEFAULT 0;
