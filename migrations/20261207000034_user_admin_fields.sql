-- Why: Synapse's admin API keeps, per account, a user type (`support`, `bot`), email addresses
-- and phone numbers (threepids; Hearth sends no mail, so they are records the admin keeps, shown
-- to the user in /account/3pid) and single sign-on identities (external IDs), and can
-- shadow-ban an account (what it sends is answered as if sent, and goes nowhere).
ALTER TABLE users ADD COLUMN user_type TEXT;
ALTER TABLE users ADD COLUMN shadow_banned INTEGER NOT NULL DEFAULT 0;

CREATE TABLE user_threepids (
    medium       TEXT NOT NULL,
    address      TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    validated_at INTEGER NOT NULL,
    added_at     INTEGER NOT NULL,
    PRIMARY KEY (medium, address)
) STRICT, WITHOUT ROWID;
CREATE INDEX user_threepids_user ON user_threepids(user_id);

CREATE TABLE user_external_ids (
    auth_provider TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    PRIMARY KEY (auth_provider, external_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX user_external_ids_user ON user_external_ids(user_id);
