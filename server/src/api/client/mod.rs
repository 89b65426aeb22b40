//! Client-Server API handlers (spec: client-server-api), named after ruma's endpoint modules.

pub mod account;
pub mod device;
pub mod discovery;
pub mod session;

use axum::Router;
use ruma::api::client as c;

use crate::{http::route, service::AppState};

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = route::<c::discovery::get_supported_versions::Request, _, _>(r, discovery::get_supported_versions);
    let r = route::<c::discovery::discover_homeserver::Request, _, _>(r, discovery::discover_homeserver);
    let r = route::<c::discovery::get_capabilities::v3::Request, _, _>(r, discovery::get_capabilities);

    let r = route::<c::account::register::v3::Request, _, _>(r, account::register);
    let r = route::<c::account::get_username_availability::v3::Request, _, _>(r, account::get_username_availability);
    let r = route::<c::account::check_registration_token_validity::v1::Request, _, _>(
        r,
        account::check_registration_token_validity,
    );
    let r = route::<c::account::whoami::v3::Request, _, _>(r, account::whoami);
    let r = route::<c::account::change_password::v3::Request, _, _>(r, account::change_password);
    let r = route::<c::account::deactivate::v3::Request, _, _>(r, account::deactivate);

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
    route::<c::device::delete_devices::v3::Request, _, _>(r, device::delete_devices)
}
