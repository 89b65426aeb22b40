-- Why: a transaction ID is one device's on one endpoint (spec: "Transaction identifiers"): the
-- same ID sent to another room, or as another event type, is another event, not a retry. The
-- unique index was per device only, so such a send answered the first room's event.
DROP INDEX events_txn;
CREATE UNIQUE INDEX events_txn ON events(txn_user_id, txn_device_id, room_id, event_type, txn_id) WHERE txn_id IS NOT NULL;
