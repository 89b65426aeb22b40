//! Endpoints for application services (bridges). None is registered on this server, so no
//! access token belongs to one, and the spec's answer to anyone else is 403.

use ruma::api::client::appservice::{request_ping, set_room_visibility};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
};

fn not_an_appservice() -> Error {
    Error::forbidden("This access token does not belong to an application service (none is registered here)")
}

/// POST /_matrix/client/v1/appservice/{appserviceId}/ping
pub async fn request_ping(_: Ruma<request_ping::v1::Request>) -> Result<RumaResponse<request_ping::v1::Response>> {
    Err(not_an_appservice())
}

/// PUT /_matrix/client/v3/directory/list/appservice/{networkId}/{roomId}
pub async fn set_room_visibility(
    _: Ruma<set_room_visibility::v3::Request>,
) -> Result<RumaResponse<set_room_visibility::v3::Response>> {
    Err(not_an_appservice())
}
