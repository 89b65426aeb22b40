//! Server discovery and feature advertisement: `/versions`, `.well-known/matrix/client`,
//! `/capabilities`.

use std::collections::BTreeMap;

use axum::extract::State;
use ruma::{
    RoomVersionId,
    api::client::discovery::{
        discover_homeserver, discover_policy_server, discover_support, get_capabilities,
        get_capabilities::v3::{
            AccountModerationCapability, Capabilities, GetLoginTokenCapability, RoomVersionStability,
            RoomVersionsCapability,
        },
        get_supported_versions,
    },
};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// Spec versions advertised. Only versions whose endpoints this server actually serves are
/// listed; v1.11 came with authenticated media; later versions are added as their features
/// land, so clients do not call endpoints that are not there.
pub const SUPPORTED_VERSIONS: &[&str] = &[
    "r0.5.0", "r0.6.0", "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10",
    "v1.11",
];

/// GET /_matrix/client/versions
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientversions>
pub async fn get_supported_versions(
    State(s): State<AppState>,
    _: Ruma<get_supported_versions::Request>,
) -> RumaResponse<get_supported_versions::Response> {
    let mut resp = get_supported_versions::Response::new(SUPPORTED_VERSIONS.iter().map(|v| (*v).to_owned()).collect());
    // Only flags for what this server serves: a client that sees a flag calls the endpoints
    // behind it. Synapse's names, since clients look for exactly those.
    resp.unstable_features = BTreeMap::from([
        // Cross-signing (MSC1756): Element Web sets it up at login only when it sees this,
        // and otherwise marks every message from the account with a red shield.
        ("org.matrix.e2e_cross_signing".to_owned(), true),
        // GET /rooms/{roomId}/aliases (MSC2432).
        ("org.matrix.msc2432".to_owned(), true),
        // Private read receipts (MSC2285, stable names).
        ("org.matrix.msc2285.stable".to_owned(), true),
        // Threads (MSC3440) and per-thread receipts and notification counts (MSC3771).
        ("org.matrix.msc3440.stable".to_owned(), true),
        ("org.matrix.msc3771".to_owned(), true),
        // Login token issuance (`/login/get_token`, MSC3882).
        ("org.matrix.msc3882".to_owned(), true),
        // Dehydrated devices (keys/events for a device kept on the server).
        ("org.matrix.msc3814".to_owned(), true),
        // Authenticated media, for clients that look for the MSC's flag rather than v1.11.
        ("org.matrix.msc3916.stable".to_owned(), true),
        // Simplified sliding sync (MSC4186), which Element X requires.
        ("org.matrix.simplified_msc3575".to_owned(), true),
    ]);
    // Delayed events (MSC4140), which Element Call looks for, when they are switched on.
    if s.delayed.enabled() {
        resp.unstable_features.insert("org.matrix.msc4140".to_owned(), true);
    }
    RumaResponse(resp)
}

/// GET /.well-known/matrix/client
/// <https://spec.matrix.org/v1.19/client-server-api/#getwell-knownmatrixclient>
pub async fn discover_homeserver(
    State(s): State<AppState>,
    _: Ruma<discover_homeserver::Request>,
) -> RumaResponse<discover_homeserver::Response> {
    let base = s.config.public_baseurl();
    RumaResponse(discover_homeserver::Response::new(discover_homeserver::HomeserverInfo::new(
        base.trim_end_matches('/').to_owned(),
    )))
}

/// GET /_matrix/client/v3/capabilities
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv3capabilities>
pub async fn get_capabilities(
    State(s): State<AppState>,
    req: Ruma<get_capabilities::v3::Request>,
) -> Result<RumaResponse<get_capabilities::v3::Response>> {
    let mut caps = Capabilities::new();
    // Admins may lock and suspend accounts (omitted for everyone else, as the spec asks).
    if req.session().is_admin {
        caps.account_moderation = AccountModerationCapability::new(true, true);
    }
    caps.change_password.enabled = true;
    let available = (1..=12)
        .filter_map(|v| RoomVersionId::try_from(v.to_string().as_str()).ok())
        .map(|v| (v, RoomVersionStability::Stable))
        .collect();
    let default = RoomVersionId::try_from(s.config.default_room_version.as_str()).unwrap_or(RoomVersionId::V12);
    caps.room_versions = RoomVersionsCapability::new(default, available);
    caps.get_login_token = GetLoginTokenCapability::new(true);
    // Spec 1.18: a server that forgets rooms on leave must say so.
    caps.forget_forced_upon_leave =
        get_capabilities::v3::ForgetForcedUponLeaveCapability::new(s.config.forget_rooms_on_leave);
    // Delayed events' limits (MSC4140), listed also when they are off (max_delay_ms 0), as
    // Synapse does.
    caps.set(
        "org.matrix.msc4140.delayed_events",
        serde_json::json!({"max_delay_ms": s.delayed.max_delay_ms(), "max_scheduled": s.delayed.max_scheduled()}),
    )
    .map_err(Error::internal)?;
    Ok(RumaResponse(get_capabilities::v3::Response::new(caps)))
}

/// GET /.well-known/matrix/support: who runs this server. The server's admins are its contacts
/// (a family's server has no support desk), with the email address of `admin_contact` when it
/// is a `mailto:` URI and the page `support_page` names if set (both can be set in the
/// dashboard's Settings); with none of these, 404 as the spec says.
pub async fn discover_support(
    State(s): State<AppState>,
    _: Ruma<discover_support::Request>,
) -> Result<RumaResponse<discover_support::Response>> {
    let mut contacts: Vec<discover_support::Contact> = s
        .accounts
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.is_admin && !u.deactivated)
        .filter_map(|u| ruma::OwnedUserId::try_from(u.user_id).ok())
        .map(|id| discover_support::Contact::with_matrix_id(discover_support::ContactRole::Admin, id))
        .collect();
    if let Some(email) = s.config.admin_contact.as_deref().and_then(|c| c.strip_prefix("mailto:")) {
        contacts.push(discover_support::Contact::with_email_address(
            discover_support::ContactRole::Admin,
            email.to_owned(),
        ));
    }
    if contacts.is_empty() && s.config.support_page.is_none() {
        return Err(Error::not_found("No contact for this server is known"));
    }
    let mut resp = discover_support::Response::with_contacts(contacts);
    resp.support_page = s.config.support_page.clone();
    Ok(RumaResponse(resp))
}

/// GET /.well-known/matrix/policy_server: this server is not a policy server.
pub async fn discover_policy_server(
    _: Ruma<discover_policy_server::Request>,
) -> Result<RumaResponse<discover_policy_server::Response>> {
    Err(Error::not_found("This server is not a policy server"))
}
