//! Dehydrated devices (MSC3814, the unstable endpoints matrix-rust-sdk uses): one device per
//! user kept on the server with its keys, so others share room keys with it while every real
//! device of the user is offline. A new login fetches its to-device messages (the room keys)
//! and then usually replaces it.

use serde_json::Value;

use super::E2ee;
use crate::{
    error::{Error, Result},
    storage,
};

/// To-device messages per page of `POST /dehydrated_device/{id}/events`.
const EVENTS_PER_PAGE: i64 = 100;

impl E2ee {
    /// PUT /dehydrated_device: replaces the user's dehydrated device with a new one and its
    /// keys. Nothing is kept when the keys are refused.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_dehydrated_device(
        &self,
        user: &str,
        device: &str,
        display_name: Option<&str>,
        device_data: &str,
        device_keys: &str,
        one_time_keys: &[(String, String)],
        fallback_keys: &[(String, String)],
    ) -> Result<()> {
        let old = storage::device_keys::dehydrated_device(&self.db.write, user).await?;
        let clash = storage::devices::get(&self.db.write, user, device).await?.is_some()
            && old.as_ref().map(|(d, _)| d.as_str()) != Some(device);
        if clash {
            return Err(Error::invalid_param("A device with this ID exists and is not the dehydrated device"));
        }
        let mut tx = self.db.begin_write().await?;
        if let Some((old_device, _)) = &old {
            storage::devices::delete(&mut *tx, user, old_device).await?;
        }
        storage::devices::upsert(&mut *tx, user, device, display_name, storage::now_ms(), None).await?;
        storage::device_keys::set_dehydrated_device(&mut *tx, user, device, device_data).await?;
        tx.commit().await?;
        if let Err(e) = self.upload_keys(user, device, Some(device_keys), one_time_keys, fallback_keys).await {
            storage::devices::delete(&self.db.write, user, device).await?;
            self.device_lists.refresh(&self.db).await?;
            return Err(e);
        }
        self.device_lists.refresh(&self.db).await?;
        Ok(())
    }

    /// GET /dehydrated_device: (device ID, device data).
    pub async fn dehydrated_device(&self, user: &str) -> Result<(String, Value)> {
        let (device, data) = storage::device_keys::dehydrated_device(&self.db.read, user)
            .await?
            .ok_or_else(|| Error::not_found("No dehydrated device"))?;
        Ok((device, serde_json::from_str(&data).map_err(Error::internal)?))
    }

    /// DELETE /dehydrated_device: answers the deleted device's ID.
    pub async fn delete_dehydrated_device(&self, user: &str) -> Result<String> {
        let (device, _) = storage::device_keys::dehydrated_device(&self.db.write, user)
            .await?
            .ok_or_else(|| Error::not_found("No dehydrated device"))?;
        storage::devices::delete(&self.db.write, user, &device).await?;
        self.device_lists.refresh(&self.db).await?;
        Ok(device)
    }

    /// POST /dehydrated_device/{device_id}/events: the device's to-device messages after
    /// `next_batch` (those up to it are acknowledged and deleted), and the next token.
    pub async fn dehydrated_events(
        &self,
        user: &str,
        device: &str,
        next_batch: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>)> {
        match storage::device_keys::dehydrated_device(&self.db.read, user).await? {
            Some((d, _)) if d == device => {}
            _ => return Err(Error::not_found("No such dehydrated device")),
        }
        let since = match next_batch {
            Some(t) => t.parse::<i64>().map_err(|_| Error::invalid_param("Invalid next_batch"))?,
            None => 0,
        };
        if since > 0 {
            storage::to_device::delete_acked(&self.db.write, user, device, since).await?;
        }
        let rows = storage::to_device::pending(&self.db.read, user, device, since, i64::MAX, EVENTS_PER_PAGE).await?;
        let next = rows.last().map(|r| r.stream_id.to_string()).or_else(|| next_batch.map(str::to_owned));
        Ok((rows.into_iter().map(super::to_device_event).collect(), next))
    }
}
