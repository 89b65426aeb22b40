-- Account moderation (spec: "Account locking" and "Account suspension"): both reversible, unlike
-- deactivation. A locked account can do nothing but log out; a suspended one can read, leave
-- rooms and tidy up, but not join, invite, send or change its profile.
ALTER TABLE users ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
