-- Why: settings chosen in the setup wizard and the dashboard (server name, public address,
-- registration policy, how the server is reached, which wizard steps are done). They override
-- homeserver.toml for the keys they cover and are applied when the server (re)starts.
-- Values are JSON.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
