-- Why: Synapse's admin API quarantines media (it is no longer served, to anyone) and protects
-- media from that (`safe_from_quarantine`, for the avatars and stickers an admin trusts). Who
-- quarantined it is kept, as Synapse's `quarantined_by`; NULL serves it.
ALTER TABLE media ADD COLUMN quarantined_by TEXT;
ALTER TABLE media ADD COLUMN safe_from_quarantine INTEGER NOT NULL DEFAULT 0;
