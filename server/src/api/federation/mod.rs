//! Server-Server API handlers: discovery (our key document, notary key queries, the version,
//! `.well-known/matrix/server`), OpenID user info, and queries. Requests that need it are
//! authenticated by their `X-Matrix` signature in the extractor (`http::ruma`).

pub mod directory;
pub mod discovery;
pub mod keys;
pub mod media;
pub mod openid;
pub mod query;
pub mod rooms;

use axum::Router;
use ruma::api::federation as f;

use crate::{http::route, service::AppState};

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = route::<f::discovery::get_server_keys::v2::Request, _, _>(r, discovery::get_server_keys);
    let r = route::<f::discovery::get_server_version::v1::Request, _, _>(r, discovery::get_server_version);
    let r = route::<f::discovery::get_remote_server_keys::v2::Request, _, _>(r, discovery::get_remote_server_keys);
    let r = route::<f::discovery::get_remote_server_keys_batch::v2::Request, _, _>(
        r,
        discovery::get_remote_server_keys_batch,
    );
    let r = route::<f::query::get_profile_information::v1::Request, _, _>(r, query::get_profile_information);
    let r = route::<f::query::get_room_information::v1::Request, _, _>(r, query::get_room_information);
    let r = route::<f::transactions::send_transaction_message::v1::Request, _, _>(r, rooms::send_transaction);
    let r = route::<f::membership::prepare_join_event::v1::Request, _, _>(r, rooms::make_join);
    let r = route::<f::membership::create_join_event::v2::Request, _, _>(r, rooms::send_join);
    let r = route::<f::membership::prepare_leave_event::v1::Request, _, _>(r, rooms::make_leave);
    let r = route::<f::membership::create_invite::v2::Request, _, _>(r, rooms::invite);
    let r = route::<f::membership::prepare_knock_event::v1::Request, _, _>(r, rooms::make_knock);
    let r = route::<f::membership::create_knock_event::v1::Request, _, _>(r, rooms::send_knock);
    let r = route::<f::membership::create_leave_event::v2::Request, _, _>(r, rooms::send_leave);
    let r = route::<f::event::get_event::v1::Request, _, _>(r, rooms::get_event);
    let r = route::<f::event::get_room_state_ids::v1::Request, _, _>(r, rooms::get_state_ids);
    let r = route::<f::event::get_room_state::v1::Request, _, _>(r, rooms::get_state);
    let r = route::<f::authorization::get_event_authorization::v1::Request, _, _>(r, rooms::get_event_auth);
    let r = route::<f::event::get_missing_events::v1::Request, _, _>(r, rooms::get_missing_events);
    let r = route::<f::backfill::get_backfill::v1::Request, _, _>(r, rooms::get_backfill);
    let r = route::<f::event::get_event_by_timestamp::v1::Request, _, _>(r, rooms::timestamp_to_event);
    let r = route::<f::openid::get_openid_userinfo::v1::Request, _, _>(r, openid::get_openid_userinfo);
    let r = route::<f::keys::get_keys::v1::Request, _, _>(r, keys::get_keys);
    let r = route::<f::directory::get_public_rooms::v1::Request, _, _>(r, directory::get_public_rooms);
    let r = route::<f::space::get_hierarchy::v1::Request, _, _>(r, directory::get_hierarchy);
    let r =
        route::<f::directory::get_public_rooms_filtered::v1::Request, _, _>(r, directory::get_public_rooms_filtered);
    let r = route::<f::keys::claim_keys::v1::Request, _, _>(r, keys::claim_keys);
    let r = route::<f::device::get_devices::v1::Request, _, _>(r, keys::get_devices);
    let r = route::<f::authenticated_media::get_content::v1::Request, _, _>(r, media::get_content);
    let r = route::<f::authenticated_media::get_content_thumbnail::v1::Request, _, _>(r, media::get_content_thumbnail);
    route::<f::discovery::discover_homeserver::Request, _, _>(r, discovery::discover_homeserver)
}
