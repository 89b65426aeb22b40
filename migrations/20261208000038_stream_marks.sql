-- Why: pruning notifications read a day ago (highlights: a month) needs the age of events, and
-- the events table has no index on time: finding the cut-off there read the whole table (17 s
-- from a cold disk with a million events). Instead the hourly housekeeping notes where the
-- event stream stood, by this server's clock: every event at or before a mark's position
-- had arrived by then. A month and a day of hourly marks at most.
CREATE TABLE stream_marks (
    ts       INTEGER PRIMARY KEY,
    position INTEGER NOT NULL
) STRICT;
