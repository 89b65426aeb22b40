-- Why: Synapse's admin API shows since when a server has been failing (`failure_ts`); the back-off
-- alone says when the next attempt is, not when the failures began. Set by the first failure
-- after a success, cleared by the next success.
ALTER TABLE federation_destinations ADD COLUMN failure_ts INTEGER;
