//! Where each room last moved in a stream (its latest event, its latest receipt), kept so that
//! "which rooms moved after position P" costs the rooms that did, not every room. An
//! incremental /sync of a user in 2,000 rooms asks it on every wake-up: looking up each of the
//! user's rooms instead cost about a millisecond per answer.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub struct Heads {
    by_room: HashMap<String, i64>,
    /// The same positions, ordered by position.
    order: BTreeSet<(i64, String)>,
}

impl Heads {
    /// The room's position (0 when it never moved).
    pub fn get(&self, room_id: &str) -> i64 {
        self.by_room.get(room_id).copied().unwrap_or(0)
    }

    /// The room moved at `pos` (a position behind the room's is ignored).
    pub fn advance(&mut self, room_id: &str, pos: i64) {
        match self.by_room.get_mut(room_id) {
            Some(at) if *at >= pos => {}
            Some(at) => {
                self.order.remove(&(*at, room_id.to_owned()));
                *at = pos;
                self.order.insert((pos, room_id.to_owned()));
            }
            None => {
                self.by_room.insert(room_id.to_owned(), pos);
                self.order.insert((pos, room_id.to_owned()));
            }
        }
    }

    pub fn remove(&mut self, room_id: &str) {
        if let Some(at) = self.by_room.remove(room_id) {
            self.order.remove(&(at, room_id.to_owned()));
        }
    }

    /// The latest position of any room (0 when none moved).
    pub fn latest(&self) -> i64 {
        self.order.last().map_or(0, |(pos, _)| *pos)
    }

    /// The rooms whose position is after `pos`, oldest move first.
    pub fn moved_after(&self, pos: i64) -> impl Iterator<Item = &str> {
        let from = (pos.saturating_add(1), String::new());
        self.order.range(from..).map(|(_, room)| room.as_str())
    }
}

impl FromIterator<(String, i64)> for Heads {
    fn from_iter<I: IntoIterator<Item = (String, i64)>>(iter: I) -> Self {
        let mut heads = Heads::default();
        for (room, pos) in iter {
            heads.advance(&room, pos);
        }
        heads
    }
}

#[cfg(test)]
mod tests {
    use super::Heads;

    #[test]
    fn rooms_moved_after_a_position_are_found_and_a_room_counts_once_at_its_latest() {
        let mut heads: Heads = [("!a".to_owned(), 3), ("!b".to_owned(), 5)].into_iter().collect();
        heads.advance("!c", 7);
        // A room moving again leaves its older position behind; an older position is ignored.
        heads.advance("!a", 9);
        heads.advance("!b", 4);
        assert_eq!(heads.moved_after(0).collect::<Vec<_>>(), ["!b", "!c", "!a"]);
        assert_eq!(heads.moved_after(5).collect::<Vec<_>>(), ["!c", "!a"]);
        assert_eq!(heads.moved_after(9).count(), 0);
        assert_eq!(heads.moved_after(i64::MAX).count(), 0);
        assert_eq!((heads.get("!a"), heads.get("!b"), heads.get("!unknown")), (9, 5, 0));
        assert_eq!(heads.latest(), 9);
        heads.remove("!a");
        assert_eq!(heads.moved_after(0).collect::<Vec<_>>(), ["!b", "!c"]);
        assert_eq!((heads.get("!a"), heads.latest()), (0, 7));
    }
}
