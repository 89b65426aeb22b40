-- The size of the database and of the stored media, one row per day (UTC), for the Status
-- page's growth over time. The day's row is updated as the day goes on (at most hourly).
CREATE TABLE size_history (
    day            INTEGER PRIMARY KEY, -- days since 1970-01-01 (UTC)
    database_bytes INTEGER NOT NULL,
    media_bytes    INTEGER NOT NULL
) STRICT;
