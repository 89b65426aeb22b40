-- Why: a room summary's heroes are the first five joined or invited members in the order their
-- membership events came (spec: "Room summary"). Picking them from the primary key (room, user)
-- meant reading and sorting every member of the room, for every room of an initial sync: in a
-- room of 200, a fifth of the sync's instructions. In this index each membership's members are
-- in stream order, so the five are the first five entries, and the member counts are counts of
-- one range each.
CREATE INDEX memberships_room_order ON memberships(room_id, membership, stream_ordering);
