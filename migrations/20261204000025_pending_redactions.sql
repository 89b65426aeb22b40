-- Why: a redaction from another server can arrive before the event it redacts (history before
-- the join, fetched later by backfill; an event beyond a gap that was closed from the state).
-- Such redactions are kept here, and applied when their target arrives, as Synapse does at
-- read time. A row goes once the redaction is applied or refused.
CREATE TABLE pending_redactions (
    target       TEXT NOT NULL,
    redaction_id TEXT NOT NULL,
    room_id      TEXT NOT NULL,
    PRIMARY KEY (target, redaction_id)
) STRICT, WITHOUT ROWID;
