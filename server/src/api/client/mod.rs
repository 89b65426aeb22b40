//! Client-Server API handlers (spec: client-server-api), named after ruma's endpoint modules.

pub mod account;
pub mod account_data;
pub mod admin;
pub mod appservice;
pub mod backup;
pub mod delayed_events;
pub mod device;
pub mod directory;
pub mod discovery;
pub mod ephemeral;
pub mod keys;
pub mod legacy;
pub mod media;
pub mod membership;
pub mod message;
pub mod moderation;
pub mod presence;
pub mod profile;
pub mod push;
pub mod relations;
pub mod room;
pub mod search;
pub mod session;
pub mod spaces;
pub mod sync;
pub mod thirdparty;
pub mod threepid;
pub mod voip;

use axum::Router;
use ruma::api::client as c;

use crate::{http::route, service::AppState};

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = route::<c::discovery::get_supported_versions::Request, _, _>(r, discovery::get_supported_versions);
    let r = route::<c::discovery::discover_homeserver::Request, _, _>(r, discovery::discover_homeserver);
    let r = route::<c::discovery::get_capabilities::v3::Request, _, _>(r, discovery::get_capabilities);
    let r = route::<c::discovery::discover_support::Request, _, _>(r, discovery::discover_support);
    let r = route::<c::discovery::discover_policy_server::Request, _, _>(r, discovery::discover_policy_server);

    let r = route::<c::account::register::v3::Request, _, _>(r, account::register);
    let r = route::<c::account::get_username_availability::v3::Request, _, _>(r, account::get_username_availability);
    let r = route::<c::account::check_registration_token_validity::v1::Request, _, _>(
        r,
        account::check_registration_token_validity,
    );
    let r = route::<c::account::whoami::v3::Request, _, _>(r, account::whoami);
    let r = route::<c::account::change_password::v3::Request, _, _>(r, account::change_password);
    let r = route::<c::account::deactivate::v3::Request, _, _>(r, account::deactivate);
    let r = route::<c::account::request_openid_token::v3::Request, _, _>(r, account::request_openid_token);
    let r = route::<c::account::get_3pids::v3::Request, _, _>(r, threepid::get_3pids);
    let r = route::<c::account::add_3pid::v3::Request, _, _>(r, threepid::add_3pid);
    let r = route::<c::account::bind_3pid::v3::Request, _, _>(r, threepid::bind_3pid);
    let r = route::<c::account::delete_3pid::v3::Request, _, _>(r, threepid::delete_3pid);
    let r = route::<c::account::unbind_3pid::v3::Request, _, _>(r, threepid::unbind_3pid);
    let r = r
        .route("/_matrix/client/v3/account/3pid", axum::routing::post(threepid::add_3pid_deprecated))
        .route("/_matrix/client/r0/account/3pid", axum::routing::post(threepid::add_3pid_deprecated));
    let r = route::<c::account::request_3pid_management_token_via_email::v3::Request, _, _>(
        r,
        threepid::request_3pid_email,
    );
    let r = route::<c::account::request_3pid_management_token_via_msisdn::v3::Request, _, _>(
        r,
        threepid::request_3pid_msisdn,
    );
    let r = route::<c::account::request_password_change_token_via_email::v3::Request, _, _>(
        r,
        threepid::request_password_email,
    );
    let r = route::<c::account::request_password_change_token_via_msisdn::v3::Request, _, _>(
        r,
        threepid::request_password_msisdn,
    );
    let r = route::<c::account::request_registration_token_via_email::v3::Request, _, _>(
        r,
        threepid::request_registration_email,
    );
    let r = route::<c::account::request_registration_token_via_msisdn::v3::Request, _, _>(
        r,
        threepid::request_registration_msisdn,
    );
    let r = route::<c::appservice::request_ping::v1::Request, _, _>(r, appservice::request_ping);
    let r = route::<c::appservice::set_room_visibility::v3::Request, _, _>(r, appservice::set_room_visibility);

    let r = route::<c::admin::get_user_info::v3::Request, _, _>(r, admin::get_user_info);
    let r = route::<c::admin::is_user_locked::v1::Request, _, _>(r, admin::is_user_locked);
    let r = route::<c::admin::lock_user::v1::Request, _, _>(r, admin::lock_user);
    let r = route::<c::admin::is_user_suspended::v1::Request, _, _>(r, admin::is_user_suspended);
    let r = route::<c::admin::suspend_user::v1::Request, _, _>(r, admin::suspend_user);

    let r = route::<c::session::get_login_types::v3::Request, _, _>(r, session::get_login_types);
    let r = route::<c::session::login::v3::Request, _, _>(r, session::login);
    let r = route::<c::session::get_login_token::v1::Request, _, _>(r, session::get_login_token);
    let r = route::<c::session::refresh_token::v3::Request, _, _>(r, session::refresh_token);
    let r = route::<c::session::logout::v3::Request, _, _>(r, session::logout);
    let r = route::<c::session::logout_all::v3::Request, _, _>(r, session::logout_all);

    let r = route::<c::device::get_devices::v3::Request, _, _>(r, device::get_devices);
    let r = route::<c::device::get_device::v3::Request, _, _>(r, device::get_device);
    let r = route::<c::device::update_device::v3::Request, _, _>(r, device::update_device);
    let r = route::<c::device::delete_device::v3::Request, _, _>(r, device::delete_device);
    let r = route::<c::device::delete_devices::v3::Request, _, _>(r, device::delete_devices);

    let r = route::<c::keys::upload_keys::v3::Request, _, _>(r, keys::upload_keys);
    let r = route::<c::keys::get_keys::v3::Request, _, _>(r, keys::get_keys);
    let r = route::<c::keys::claim_keys::v3::Request, _, _>(r, keys::claim_keys);
    let r = route::<c::keys::get_key_changes::v3::Request, _, _>(r, keys::get_key_changes);
    let r = route::<c::keys::upload_signing_keys::v3::Request, _, _>(r, keys::upload_signing_keys);
    let r = route::<c::keys::upload_signatures::v3::Request, _, _>(r, keys::upload_signatures);
    let r =
        route::<c::dehydrated_device::put_dehydrated_device::unstable::Request, _, _>(r, keys::put_dehydrated_device);
    let r =
        route::<c::dehydrated_device::get_dehydrated_device::unstable::Request, _, _>(r, keys::get_dehydrated_device);
    let r = route::<c::dehydrated_device::delete_dehydrated_device::unstable::Request, _, _>(
        r,
        keys::delete_dehydrated_device,
    );
    let r = route::<c::dehydrated_device::get_events::unstable::Request, _, _>(r, keys::get_dehydrated_events);
    let r = route::<c::backup::create_backup_version::v3::Request, _, _>(r, backup::create_backup_version);
    let r = route::<c::backup::get_latest_backup_info::v3::Request, _, _>(r, backup::get_latest_backup_info);
    let r = route::<c::backup::get_backup_info::v3::Request, _, _>(r, backup::get_backup_info);
    let r = route::<c::backup::update_backup_version::v3::Request, _, _>(r, backup::update_backup_version);
    let r = route::<c::backup::delete_backup_version::v3::Request, _, _>(r, backup::delete_backup_version);
    let r = route::<c::backup::add_backup_keys::v3::Request, _, _>(r, backup::add_backup_keys);
    let r = route::<c::backup::add_backup_keys_for_room::v3::Request, _, _>(r, backup::add_backup_keys_for_room);
    let r = route::<c::backup::add_backup_keys_for_session::v3::Request, _, _>(r, backup::add_backup_keys_for_session);
    let r = route::<c::backup::get_backup_keys::v3::Request, _, _>(r, backup::get_backup_keys);
    let r = route::<c::backup::get_backup_keys_for_room::v3::Request, _, _>(r, backup::get_backup_keys_for_room);
    let r = route::<c::backup::get_backup_keys_for_session::v3::Request, _, _>(r, backup::get_backup_keys_for_session);
    let r = route::<c::backup::delete_backup_keys::v3::Request, _, _>(r, backup::delete_backup_keys);
    let r = route::<c::backup::delete_backup_keys_for_room::v3::Request, _, _>(r, backup::delete_backup_keys_for_room);
    let r = route::<c::backup::delete_backup_keys_for_session::v3::Request, _, _>(
        r,
        backup::delete_backup_keys_for_session,
    );
    let r = route::<c::to_device::send_event_to_device::v3::Request, _, _>(r, keys::send_event_to_device);

    let r = route::<c::room::create_room::v3::Request, _, _>(r, room::create_room);
    let r = route::<c::room::get_room_event::v3::Request, _, _>(r, room::get_room_event);
    let r = r
        .route("/_matrix/client/v3/events", axum::routing::get(legacy::get_events))
        .route("/_matrix/client/r0/events", axum::routing::get(legacy::get_events))
        .route("/_matrix/client/v3/initialSync", axum::routing::get(legacy::initial_sync))
        .route("/_matrix/client/r0/initialSync", axum::routing::get(legacy::initial_sync))
        .route("/_matrix/client/v3/rooms/{room_id}/initialSync", axum::routing::get(legacy::room_initial_sync))
        .route("/_matrix/client/r0/rooms/{room_id}/initialSync", axum::routing::get(legacy::room_initial_sync))
        .route("/_matrix/client/v3/events/{event_id}", axum::routing::get(room::get_event_by_id))
        .route("/_matrix/client/r0/events/{event_id}", axum::routing::get(room::get_event_by_id));
    let r = route::<c::room::upgrade_room::v3::Request, _, _>(r, room::upgrade_room);
    let r = route::<c::state::send_state_event::v3::Request, _, _>(r, room::send_state_event);
    let r = route::<c::state::get_state_event_for_key::v3::Request, _, _>(r, room::get_state_event_for_key);
    let r = route::<c::state::get_state_events::v3::Request, _, _>(r, room::get_state_events);
    let r = route::<c::alias::get_alias::v3::Request, _, _>(r, room::get_alias);
    let r = route::<c::alias::create_alias::v3::Request, _, _>(r, room::create_alias);
    let r = route::<c::alias::delete_alias::v3::Request, _, _>(r, room::delete_alias);

    let r = route::<c::message::send_message_event::v3::Request, _, _>(r, message::send_message_event);
    let r = delayed_events::routes(r);
    let r = route::<c::message::get_message_events::v3::Request, _, _>(r, message::get_message_events);

    let r = route::<c::membership::join_room_by_id::v3::Request, _, _>(r, membership::join_room_by_id);
    let r =
        route::<c::membership::join_room_by_id_or_alias::v3::Request, _, _>(r, membership::join_room_by_id_or_alias);
    let r = route::<c::membership::invite_user::v3::Request, _, _>(r, membership::invite_user);
    let r = route::<c::membership::leave_room::v3::Request, _, _>(r, membership::leave_room);
    let r = route::<c::membership::forget_room::v3::Request, _, _>(r, membership::forget_room);
    let r = route::<c::membership::kick_user::v3::Request, _, _>(r, membership::kick_user);
    let r = route::<c::membership::ban_user::v3::Request, _, _>(r, membership::ban_user);
    let r = route::<c::membership::unban_user::v3::Request, _, _>(r, membership::unban_user);
    let r = route::<c::membership::joined_rooms::v3::Request, _, _>(r, membership::joined_rooms);
    let r = route::<c::membership::get_member_events::v3::Request, _, _>(r, membership::get_member_events);
    let r = route::<c::membership::joined_members::v3::Request, _, _>(r, membership::joined_members);

    let r = route::<c::config::set_global_account_data::v3::Request, _, _>(r, account_data::set_global_account_data);
    let r = route::<c::config::get_global_account_data::v3::Request, _, _>(r, account_data::get_global_account_data);
    let r = route::<c::config::set_room_account_data::v3::Request, _, _>(r, account_data::set_room_account_data);
    let r = route::<c::config::get_room_account_data::v3::Request, _, _>(r, account_data::get_room_account_data);

    let r = route::<c::tag::get_tags::v3::Request, _, _>(r, account_data::get_tags);
    let r = route::<c::tag::create_tag::v3::Request, _, _>(r, account_data::create_tag);
    let r = route::<c::tag::delete_tag::v3::Request, _, _>(r, account_data::delete_tag);

    let r = route::<c::redact::redact_event::v3::Request, _, _>(r, message::redact_event);
    let r = route::<c::relations::get_relating_events::v1::Request, _, _>(r, relations::get_relating_events);
    let r = route::<c::relations::get_relating_events_with_rel_type::v1::Request, _, _>(
        r,
        relations::get_relating_events_with_rel_type,
    );
    let r = route::<c::relations::get_relating_events_with_rel_type_and_event_type::v1::Request, _, _>(
        r,
        relations::get_relating_events_with_rel_type_and_event_type,
    );
    let r = r.route("/_matrix/client/v1/rooms/{room_id}/threads", axum::routing::get(relations::get_threads)).route(
        "/_matrix/client/unstable/org.matrix.msc3856/rooms/{room_id}/threads",
        axum::routing::get(relations::get_threads),
    );
    let r = route::<c::context::get_context::v3::Request, _, _>(r, relations::get_context);
    let r = route::<c::room::report_content::v3::Request, _, _>(r, moderation::report_content);
    let r = route::<c::room::report_room::v3::Request, _, _>(r, moderation::report_room);
    let r = route::<c::reporting::report_user::v3::Request, _, _>(r, moderation::report_user);
    let r = route::<c::room::get_event_by_timestamp::v1::Request, _, _>(r, moderation::get_event_by_timestamp);
    let r = route::<c::room::aliases::v3::Request, _, _>(r, moderation::get_room_aliases);
    let r = route::<c::knock::knock_room::v3::Request, _, _>(r, moderation::knock_room);
    let r = route::<c::room::get_summary::v1::Request, _, _>(r, spaces::get_summary);
    let r = route::<c::search::search_events::v3::Request, _, _>(r, search::search_events);
    let r = route::<c::space::get_hierarchy::v1::Request, _, _>(r, spaces::get_hierarchy);
    // Synapse's password policy, which clients read before asking for a new password.
    let r = r
        .route("/_matrix/client/v3/password_policy", axum::routing::get(account::password_policy))
        .route("/_matrix/client/r0/password_policy", axum::routing::get(account::password_policy));
    let r = r.route("/_matrix/client/v1/mutual_rooms", axum::routing::get(moderation::mutual_rooms)).route(
        "/_matrix/client/unstable/uk.half-shot.msc2666/user/mutual_rooms",
        axum::routing::get(moderation::mutual_rooms),
    );
    let r = route::<c::typing::create_typing_event::v3::Request, _, _>(r, ephemeral::create_typing_event);
    let r = route::<c::receipt::create_receipt::v3::Request, _, _>(r, ephemeral::create_receipt);
    let r = route::<c::read_marker::set_read_marker::v3::Request, _, _>(r, ephemeral::set_read_marker);

    let r = route::<c::profile::get_profile::v3::Request, _, _>(r, profile::get_profile);
    let r = route::<c::profile::get_profile_field::v3::Request, _, _>(r, profile::get_profile_field);
    let r = route::<c::profile::set_profile_field::v3::Request, _, _>(r, profile::set_profile_field);
    let r = route::<c::profile::delete_profile_field::v3::Request, _, _>(r, profile::delete_profile_field);
    let r = route::<c::presence::set_presence::v3::Request, _, _>(r, presence::set_presence);
    let r = route::<c::presence::get_presence::v3::Request, _, _>(r, presence::get_presence);

    let r = route::<c::user_directory::search_users::v3::Request, _, _>(r, directory::search_users);
    let r = route::<c::directory::get_public_rooms::v3::Request, _, _>(r, directory::get_public_rooms);
    let r =
        route::<c::directory::get_public_rooms_filtered::v3::Request, _, _>(r, directory::get_public_rooms_filtered);
    let r = route::<c::directory::get_room_visibility::v3::Request, _, _>(r, directory::get_room_visibility);
    let r = route::<c::directory::set_room_visibility::v3::Request, _, _>(r, directory::set_room_visibility);

    let r = route::<c::push::get_notifications::v3::Request, _, _>(r, push::get_notifications);
    let r = route::<c::push::get_pushers::v3::Request, _, _>(r, push::get_pushers);
    let r = route::<c::push::set_pusher::v3::Request, _, _>(r, push::set_pusher);
    let r = route::<c::push::get_pushrules_all::v3::Request, _, _>(r, push::get_pushrules_all);
    let r = route::<c::push::get_pushrules_global_scope::v3::Request, _, _>(r, push::get_pushrules_global_scope);
    let r = route::<c::push::get_pushrule::v3::Request, _, _>(r, push::get_pushrule);
    let r = route::<c::push::set_pushrule::v3::Request, _, _>(r, push::set_pushrule);
    let r = route::<c::push::delete_pushrule::v3::Request, _, _>(r, push::delete_pushrule);
    let r = route::<c::push::get_pushrule_enabled::v3::Request, _, _>(r, push::get_pushrule_enabled);
    let r = route::<c::push::set_pushrule_enabled::v3::Request, _, _>(r, push::set_pushrule_enabled);
    let r = route::<c::push::get_pushrule_actions::v3::Request, _, _>(r, push::get_pushrule_actions);
    let r = route::<c::push::set_pushrule_actions::v3::Request, _, _>(r, push::set_pushrule_actions);
    // Partial paths of the push rules tree, as Synapse answers them: one kind's rules with the
    // trailing slash, 400 M_UNRECOGNIZED for a path that names no listing.
    let mut r = r;
    for v in ["v3", "r0"] {
        let base = format!("/_matrix/client/{v}/pushrules");
        r = r
            .route(&format!("{base}/global/{{kind}}/"), axum::routing::get(push::get_pushrules_kind))
            .route(&base, axum::routing::get(push::partial_path))
            .route(&format!("{base}/global"), axum::routing::get(push::partial_path))
            .route(&format!("{base}/global/{{kind}}"), axum::routing::get(push::partial_path));
    }

    let r = route::<c::thirdparty::get_protocols::v3::Request, _, _>(r, thirdparty::get_protocols);
    let r = route::<c::thirdparty::get_protocol::v3::Request, _, _>(r, thirdparty::get_protocol);
    let r =
        route::<c::thirdparty::get_location_for_protocol::v3::Request, _, _>(r, thirdparty::get_location_for_protocol);
    let r = route::<c::thirdparty::get_user_for_protocol::v3::Request, _, _>(r, thirdparty::get_user_for_protocol);
    let r = route::<c::thirdparty::get_location_for_room_alias::v3::Request, _, _>(
        r,
        thirdparty::get_location_for_room_alias,
    );
    let r = route::<c::thirdparty::get_user_for_user_id::v3::Request, _, _>(r, thirdparty::get_user_for_user_id);

    let r = route::<c::voip::get_turn_server_info::v3::Request, _, _>(r, voip::get_turn_server_info);

    let r = media::routes(r);

    let r = route::<c::sync::sync_events::v3::Request, _, _>(r, sync::sync_events);
    let r = route::<c::sync::sync_events::v5::Request, _, _>(r, sync::sliding_sync);
    let r = route::<c::filter::create_filter::v3::Request, _, _>(r, sync::create_filter);
    route::<c::filter::get_filter::v3::Request, _, _>(r, sync::get_filter)
}
