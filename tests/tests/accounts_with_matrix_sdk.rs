//! The `matrix-sdk` crate (what Element X is built on) registers with an invite code, logs in,
//! manages devices, refreshes its token and logs out against a real Hearth.

use hearth_blackbox::{Server, client, start};
use matrix_sdk::ruma::{
    OwnedDeviceId,
    api::client::{
        account::register,
        uiaa::{self, AuthData},
    },
};
use serde_json::json;

async fn invite_code(server: &Server) -> String {
    let admin = client(server).await;
    admin.matrix_auth().login_username("admin", "admin-pw").send().await.expect("admin logs in");
    let resp: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/_synapse/admin/v1/registration_tokens/new", server.url))
        .bearer_auth(admin.access_token().unwrap())
        .json(&json!({"uses_allowed": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_family_member_signs_up_with_an_invite_code_and_manages_devices() {
    let server = start(async |c| {
        c.enable_registration = true;
        c.registration_requires_token = true;
        hearth_server::register_user_offline(c.clone(), "admin", "admin-pw".into(), true).await.unwrap();
    })
    .await;
    let code = invite_code(&server).await;

    // Register through UIA with the registration token, as Element does.
    let laptop = client(&server).await;
    let mut req = register::v3::Request::new();
    req.username = Some("grandma".into());
    req.password = Some("knitting-42".into());
    req.initial_device_display_name = Some("Laptop".into());
    req.refresh_token = true;
    let err = laptop.matrix_auth().register(req.clone()).await.expect_err("first call asks for auth");
    let info = err.as_uiaa_response().expect("a UIA challenge");
    assert_eq!(info.flows[0].stages, vec![uiaa::AuthType::RegistrationToken]);
    let mut token = uiaa::RegistrationToken::new(code.clone());
    token.session = info.session.clone();
    req.auth = Some(AuthData::RegistrationToken(token));
    let resp = laptop.matrix_auth().register(req).await.expect("registration with the invite code");
    assert_eq!(resp.user_id.as_str(), "@grandma:blackbox.test");
    assert!(resp.refresh_token.is_some());
    let me = laptop.whoami().await.expect("logged in after registering");
    assert_eq!(me.user_id, resp.user_id);

    // The invite code is used up now.
    let other = client(&server).await;
    let mut req = register::v3::Request::new();
    req.username = Some("stranger".into());
    req.password = Some("pw-long-enough".into());
    let info = other.matrix_auth().register(req.clone()).await.unwrap_err().as_uiaa_response().unwrap().clone();
    let mut token = uiaa::RegistrationToken::new(code);
    token.session = info.session;
    req.auth = Some(AuthData::RegistrationToken(token));
    assert!(other.matrix_auth().register(req).await.is_err(), "a used-up invite code is refused");

    // Log in a second device with a refresh token.
    let phone = client(&server).await;
    let login = phone
        .matrix_auth()
        .login_username("grandma", "knitting-42")
        .initial_device_display_name("Phone")
        .request_refresh_token()
        .send()
        .await
        .expect("password login");
    assert!(login.refresh_token.is_some());
    let phone_device: OwnedDeviceId = login.device_id.clone();

    // List and rename devices.
    let devices = laptop.devices().await.unwrap().devices;
    let mut names: Vec<_> = devices.iter().filter_map(|d| d.display_name.clone()).collect();
    names.sort();
    assert_eq!(names, ["Laptop", "Phone"]);
    laptop.rename_device(&phone_device, "Kitchen phone").await.unwrap();
    let renamed = laptop.devices().await.unwrap().devices.into_iter().find(|d| d.device_id == phone_device).unwrap();
    assert_eq!(renamed.display_name.as_deref(), Some("Kitchen phone"));

    // Refresh the phone's token: a new token that works, for the same device.
    let before = phone.access_token().unwrap();
    phone.refresh_access_token().await.expect("refresh");
    let after = phone.access_token().unwrap();
    assert_ne!(before, after);
    assert_eq!(phone.whoami().await.unwrap().device_id.as_ref(), Some(&phone_device));

    // Log the phone out: its token stops working and the device disappears.
    phone.matrix_auth().logout().await.expect("logout");
    let status = reqwest::Client::new()
        .get(format!("{}/_matrix/client/v3/account/whoami", server.url))
        .bearer_auth(&after)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let devices = laptop.devices().await.unwrap().devices;
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].display_name.as_deref(), Some("Laptop"));
}

#[tokio::test]
async fn deleting_a_device_asks_for_the_password_again() {
    let server = start(async |c| {
        hearth_server::register_user_offline(c.clone(), "ann", "pw-long-enough".into(), false).await.unwrap();
    })
    .await;
    let a = client(&server).await;
    a.matrix_auth().login_username("ann", "pw-long-enough").send().await.unwrap();
    let b = client(&server).await;
    let b_device = b.matrix_auth().login_username("ann", "pw-long-enough").send().await.unwrap().device_id;

    let err = a.delete_devices(std::slice::from_ref(&b_device), None).await.expect_err("UIA first");
    let info = err.as_uiaa_response().expect("a UIA challenge").clone();
    let wrong =
        uiaa::Password::new(uiaa::UserIdentifier::Matrix(uiaa::MatrixUserIdentifier::new("ann".into())), "nope".into());
    let mut wrong = wrong;
    wrong.session = info.session.clone();
    let err = a.delete_devices(std::slice::from_ref(&b_device), Some(AuthData::Password(wrong))).await.unwrap_err();
    assert!(
        err.as_uiaa_response().is_some_and(|i| i.auth_error.is_some()),
        "wrong password is reported in the UIA body"
    );

    let mut right = uiaa::Password::new(
        uiaa::UserIdentifier::Matrix(uiaa::MatrixUserIdentifier::new("ann".into())),
        "pw-long-enough".into(),
    );
    right.session = info.session;
    a.delete_devices(std::slice::from_ref(&b_device), Some(AuthData::Password(right))).await.expect("deleted");
    assert!(b.whoami().await.is_err(), "the deleted device's token no longer works");
}
