-- The admin key's SHA-256, so that the server checks the key the dashboard presents against the
-- database: `hearth rotate-admin-key` (a separate process) and the dashboard can replace the key
-- while the server runs, and the old key stops working at once. The key itself stays in the
-- secret store (keychain or 0600 file), from which `hearth admin-url` prints the link.
CREATE TABLE admin_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    sha256 BLOB NOT NULL
);
