//! Third-party networks (spec: "Third-party Networks"). Protocols come from application
//! services (bridges), and Hearth has none: the protocol map is empty, as Synapse answers
//! without bridges, and every lookup finds nothing (404, as the spec says when no portal room
//! or user is found). Element's room directory reads the map to offer its network picker.

use ruma::api::client::thirdparty::{
    get_location_for_protocol, get_location_for_room_alias, get_protocol, get_protocols, get_user_for_protocol,
    get_user_for_user_id,
};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
};

fn unknown_protocol() -> Error {
    Error::not_found("No bridge on this server offers that protocol")
}

/// GET /_matrix/client/v3/thirdparty/protocols
pub async fn get_protocols(_: Ruma<get_protocols::v3::Request>) -> RumaResponse<get_protocols::v3::Response> {
    RumaResponse(get_protocols::v3::Response::new(Default::default()))
}

/// GET /_matrix/client/v3/thirdparty/protocol/{protocol}
pub async fn get_protocol(_: Ruma<get_protocol::v3::Request>) -> Result<RumaResponse<get_protocol::v3::Response>> {
    Err(unknown_protocol())
}

/// GET /_matrix/client/v3/thirdparty/location/{protocol}
pub async fn get_location_for_protocol(
    _: Ruma<get_location_for_protocol::v3::Request>,
) -> Result<RumaResponse<get_location_for_protocol::v3::Response>> {
    Err(unknown_protocol())
}

/// GET /_matrix/client/v3/thirdparty/user/{protocol}
pub async fn get_user_for_protocol(
    _: Ruma<get_user_for_protocol::v3::Request>,
) -> Result<RumaResponse<get_user_for_protocol::v3::Response>> {
    Err(unknown_protocol())
}

/// GET /_matrix/client/v3/thirdparty/location?alias=
pub async fn get_location_for_room_alias(
    _: Ruma<get_location_for_room_alias::v3::Request>,
) -> Result<RumaResponse<get_location_for_room_alias::v3::Response>> {
    Err(Error::not_found("No bridged room has that alias"))
}

/// GET /_matrix/client/v3/thirdparty/user?userid=
pub async fn get_user_for_user_id(
    _: Ruma<get_user_for_user_id::v3::Request>,
) -> Result<RumaResponse<get_user_for_user_id::v3::Response>> {
    Err(Error::not_found("No bridged user has that Matrix ID"))
}
