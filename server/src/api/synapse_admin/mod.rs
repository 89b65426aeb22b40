//! The parts of Synapse's admin API that tools and admins rely on, with Synapse's paths and JSON
//! shapes: the server's version, shared-secret registration, registration tokens, rate limit
//! overrides, accounts and their devices, rooms and event reports, media, statistics and
//! background updates.

pub mod federation;
pub mod media;
pub mod override_ratelimit;
pub mod params;
pub mod register;
pub mod registration_tokens;
pub mod rooms;
pub mod server;
pub mod users;

use axum::{
    Router,
    routing::{delete, get, post, put},
};

use synapse_admin_api::version::get_server_version;

use crate::{http::ruma::RumaResponse, service::AppState};

/// GET /_synapse/admin/v1/server_version: as Synapse, open to anyone (admin tools read it
/// before signing in).
async fn server_version() -> RumaResponse<get_server_version::v1::Response> {
    RumaResponse(get_server_version::v1::Response::new(crate::VERSION.to_owned()))
}

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/_synapse/admin/v1/server_version", get(server_version))
        .route("/_synapse/admin/v1/register", get(register::get_nonce).post(register::register))
        .route("/_synapse/admin/v1/registration_tokens", get(registration_tokens::list))
        .route("/_synapse/admin/v1/registration_tokens/new", post(registration_tokens::create))
        .route(
            "/_synapse/admin/v1/registration_tokens/{token}",
            get(registration_tokens::get_one).put(registration_tokens::update).delete(registration_tokens::delete),
        )
        .route("/_synapse/admin/v1/users/{user_id}/media", get(media::user_media).delete(media::delete_user_media))
        .route("/_synapse/admin/v1/media/{server_name}/{media_id}", delete(media::delete_media))
        .route("/_synapse/admin/v1/media/delete", post(media::delete_old_media))
        .route("/_synapse/admin/v1/media/{server_name}/delete", post(media::delete_old_media))
        .route("/_synapse/admin/v1/purge_media_cache", post(media::purge_media_cache))
        .route("/_synapse/admin/v1/media/quarantine/{server_name}/{media_id}", post(media::quarantine))
        .route("/_synapse/admin/v1/media/unquarantine/{server_name}/{media_id}", post(media::unquarantine))
        .route("/_synapse/admin/v1/room/{room_id}/media/quarantine", post(media::quarantine_room))
        .route("/_synapse/admin/v1/quarantine_media/{room_id}", post(media::quarantine_room))
        .route("/_synapse/admin/v1/user/{user_id}/media/quarantine", post(media::quarantine_user))
        .route("/_synapse/admin/v1/media/protect/{media_id}", post(media::protect))
        .route("/_synapse/admin/v1/media/unprotect/{media_id}", post(media::unprotect))
        .route("/_synapse/admin/v1/room/{room_id}/media", get(media::room_media))
        .route("/_synapse/admin/v1/send_server_notice", post(server::send_server_notice))
        .route("/_synapse/admin/v1/send_server_notice/{txn_id}", put(server::send_server_notice_txn))
        .route("/_synapse/admin/v1/statistics/users/media", get(server::users_media))
        .route("/_synapse/admin/v1/statistics/database/rooms", get(server::database_rooms))
        .route(
            "/_synapse/admin/v1/background_updates/enabled",
            get(server::updates_enabled).post(server::set_updates_enabled),
        )
        .route("/_synapse/admin/v1/background_updates/status", get(server::updates_status))
        .route("/_synapse/admin/v1/background_updates/start_job", post(server::start_job))
        .route("/_synapse/admin/v1/join/{room}", post(rooms::join))
        .route("/_synapse/admin/v1/federation/destinations", get(federation::list))
        .route("/_synapse/admin/v1/federation/destinations/{destination}", get(federation::details))
        .route("/_synapse/admin/v1/federation/destinations/{destination}/rooms", get(federation::rooms))
        .route(
            "/_synapse/admin/v1/federation/destinations/{destination}/reset_connection",
            post(federation::reset_connection),
        )
        .route("/_synapse/admin/v1/purge_history/{room_id}", post(rooms::purge_history))
        .route("/_synapse/admin/v1/purge_history/{room_id}/{event_id}", post(rooms::purge_history))
        .route("/_synapse/admin/v1/purge_history_status/{purge_id}", get(rooms::purge_history_status))
        .route("/_synapse/admin/v1/rooms", get(rooms::list))
        .route("/_synapse/admin/v1/rooms/{room_id}", get(rooms::details).delete(rooms::delete_v1))
        .route("/_synapse/admin/v2/rooms/{room_id}", delete(rooms::delete_v2))
        .route("/_synapse/admin/v2/rooms/{room_id}/delete_status", get(rooms::delete_status_of_room))
        .route("/_synapse/admin/v2/rooms/delete_status/{delete_id}", get(rooms::delete_status))
        .route("/_synapse/admin/v1/rooms/{room_id}/members", get(rooms::members))
        .route("/_synapse/admin/v1/rooms/{room_id}/state", get(rooms::state))
        .route("/_synapse/admin/v1/rooms/{room_id}/messages", get(rooms::messages))
        .route("/_synapse/admin/v1/rooms/{room_id}/context/{event_id}", get(rooms::context))
        .route("/_synapse/admin/v1/rooms/{room_id}/make_room_admin", post(rooms::make_room_admin))
        .route("/_synapse/admin/v1/rooms/{room_id}/block", get(rooms::get_block).put(rooms::put_block))
        .route("/_synapse/admin/v1/rooms/{room_id}/forward_extremities", get(rooms::forward_extremities))
        .route("/_synapse/admin/v1/event_reports", get(rooms::event_reports))
        .route(
            "/_synapse/admin/v1/event_reports/{report_id}",
            get(rooms::event_report).delete(rooms::delete_event_report),
        )
        .route("/_synapse/admin/v2/users", get(users::list))
        .route("/_synapse/admin/v2/users/{user_id}", get(users::get_user).put(users::put_user))
        .route("/_synapse/admin/v1/deactivate/{user_id}", post(users::deactivate))
        .route("/_synapse/admin/v1/reset_password/{user_id}", post(users::reset_password))
        .route("/_synapse/admin/v1/whois/{user_id}", get(users::whois))
        .route("/_synapse/admin/v1/users/{user_id}/joined_rooms", get(users::joined_rooms))
        .route("/_synapse/admin/v1/users/{user_id}/login", post(users::login_as))
        .route("/_synapse/admin/v1/users/{user_id}/pushers", get(users::pushers))
        .route("/_synapse/admin/v1/users/{user_id}/shadow_ban", post(users::shadow_ban).delete(users::shadow_ban))
        .route("/_synapse/admin/v1/username_available", get(users::username_available))
        .route("/_synapse/admin/v1/users/{user_id}/admin", get(users::get_admin).put(users::put_admin))
        .route("/_synapse/admin/v1/suspend/{user_id}", put(users::suspend))
        .route("/_synapse/admin/v2/users/{user_id}/devices", get(users::list_devices).post(users::create_device))
        .route(
            "/_synapse/admin/v2/users/{user_id}/devices/{device_id}",
            get(users::get_device).put(users::put_device).delete(users::delete_device),
        )
        .route("/_synapse/admin/v2/users/{user_id}/delete_devices", post(users::delete_devices))
        .route(
            "/_synapse/admin/v1/users/{user_id}/override_ratelimit",
            get(override_ratelimit::get).post(override_ratelimit::set).delete(override_ratelimit::delete),
        )
}
