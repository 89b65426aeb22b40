//! Fetching a room's history from before this server was in it (`/backfill`), when a local
//! user pages back past the start of what is here.

use std::time::{Duration, Instant};

use ruma::{CanonicalJsonObject, RoomId, UInt, api::federation::backfill::get_backfill};

use super::Federation;
use crate::{error::Result, service::rooms::rules_for};

/// Most events asked for at once (Synapse's own backfill asks for 100).
const MAX_BACKFILL: u32 = 100;
/// A room whose servers had nothing more before the same event is not asked again for this long.
const NOTHING_MORE_FOR: Duration = Duration::from_secs(60);
/// Most servers tried for one page.
const MAX_SERVERS: usize = 3;
/// Most `/backfill` rounds one call makes when servers answer short.
const MAX_ROUNDS: usize = 3;

/// What `backfill_from_others` got.
pub struct Backfilled {
    /// Events that joined the timeline.
    pub stored: usize,
    /// Whether the last server asked still had events (the history may go on there).
    pub more: bool,
}

impl Federation {
    /// Fetches history from before where the room's history here begins until `need` events
    /// joined the timeline, asking for `limit` at a time. A server may answer fewer than asked
    /// (some were here already: the state as outliers, the event asked from), so it is asked
    /// again while answers keep coming, at most `MAX_ROUNDS` times.
    pub async fn backfill_from_others(&self, room_id: &RoomId, limit: u32, need: usize) -> Result<Backfilled> {
        let mut stored = 0;
        for _ in 0..MAX_ROUNDS {
            let round = match self.backfill_round(room_id, limit).await {
                Ok(n) => n,
                // What earlier rounds stored stands.
                Err(e) if stored > 0 => {
                    tracing::info!(%room_id, error = %e.message(), "backfill failed");
                    0
                }
                Err(e) => return Err(e),
            };
            stored += round;
            if round == 0 {
                return Ok(Backfilled { stored, more: false });
            }
            if stored >= need {
                break;
            }
        }
        Ok(Backfilled { stored, more: true })
    }

    /// Asks the room's other servers for up to `limit` events before where its history here
    /// begins, and stores them; returns how many joined the timeline (0 when the whole history
    /// is here, or no server had more).
    async fn backfill_round(&self, room_id: &RoomId, limit: u32) -> Result<usize> {
        let Some(from) = self.rooms.backward_extremity(room_id).await? else {
            return Ok(0);
        };
        if let Some((at, when)) = self.nothing_before.lock().get(room_id)
            && *at == from
            && when.elapsed() < NOTHING_MORE_FOR
        {
            return Ok(0);
        }
        let Some(row) = self.rooms.room(room_id).await? else { return Ok(0) };
        let (_, rules) = rules_for(&row.room_version)?;
        let ours = self.keys.own_server_name().as_str().to_owned();
        let servers: Vec<String> =
            self.rooms.servers_in_room(room_id).await?.into_iter().filter(|s| *s != ours).collect();
        for server in servers.iter().take(MAX_SERVERS) {
            let Ok(server) = super::server_name(server) else { continue };
            let request = get_backfill::v1::Request::new(
                room_id.to_owned(),
                vec![from.clone()],
                UInt::from(limit.clamp(1, MAX_BACKFILL)),
            );
            let answer = match self.client.send(server, request).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::info!(%server, %room_id, error = %e, "backfill failed");
                    continue;
                }
            };
            let events: Vec<CanonicalJsonObject> =
                answer.pdus.iter().filter_map(|raw| serde_json::from_str(raw.get()).ok()).collect();
            let verified = self.keys.verified_events(events, &rules).await;
            let stored = self.rooms.store_backfilled(room_id, &from, verified).await?;
            if stored > 0 {
                return Ok(stored);
            }
        }
        self.nothing_before.lock().insert(room_id.to_owned(), (from, Instant::now()));
        Ok(0)
    }
}
