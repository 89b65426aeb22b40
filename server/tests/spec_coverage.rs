//! Every operation of the spec's client-server API (Matrix 1.19, the OpenAPI bundled in
//! tests/fuzz/client-server.json) is answered: an operation is missing when it gets a 404 or
//! 405 that is not a Matrix error about the request (`M_UNRECOGNIZED`, or no Matrix error at
//! all). The ones Hearth deliberately does not serve are listed, each with its reason, in
//! spec_coverage_allowlist.txt; an operation listed there that starts answering fails the test
//! too, so the list only ever shrinks.

mod common;

use std::collections::BTreeMap;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SPEC: &str = include_str!("../../tests/fuzz/client-server.json");
const ALLOWLIST: &str = include_str!("spec_coverage_allowlist.txt");

/// "METHOD /path" -> reason, from the allowlist (`#` starts a comment line).
fn allowlist() -> BTreeMap<String, String> {
    ALLOWLIST
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (op, reason) = l.split_once(" -- ").unwrap_or_else(|| panic!("`{l}` has no ` -- reason`"));
            (op.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

/// The operations of the bundled spec, as (method, path template).
fn operations() -> Vec<(Method, String)> {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete"] {
            if item.get(method).is_some() {
                ops.push((Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), path.clone()));
            }
        }
    }
    ops
}

/// Whether an answer says the server does not know the endpoint (rather than refusing or
/// failing the particular request).
fn unrecognized(status: StatusCode, body: &str) -> bool {
    if status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED {
        return false;
    }
    match serde_json::from_str::<Value>(body) {
        Ok(v) => v["errcode"] == "M_UNRECOGNIZED" || v["errcode"].is_null(),
        Err(_) => true,
    }
}

#[tokio::test]
async fn every_client_server_operation_is_answered() {
    let s = TestServer::start_with(|c| c.allow_guest_access = true).await;
    let alice = s.user("alice").await;
    let (_, who) = s.get("/_matrix/client/v3/account/whoami", Some(&alice)).await;
    let device = who["device_id"].as_str().unwrap().to_owned();
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"room_alias_name": "cov"})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    let (_, sent) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t0"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await;
    let event = sent["event_id"].as_str().unwrap().to_owned();

    let value = |name: &str, n: usize| -> String {
        match name {
            "userId" => "@alice:hearth.test".to_owned(),
            "roomId" | "roomIdOrAlias" => room.clone(),
            "eventId" => event.clone(),
            "roomAlias" => "%23cov:hearth.test".to_owned(),
            "deviceId" => device.clone(),
            "txnId" => format!("coverage{n}"),
            "eventType" | "type" => "m.coverage.test".to_owned(),
            "stateKey" => "key".to_owned(),
            "serverName" => "hearth.test".to_owned(),
            "mediaId" => "nosuchmedia".to_owned(),
            "filterId" => "0".to_owned(),
            "tag" => "u.work".to_owned(),
            "kind" => "override".to_owned(),
            "ruleId" => "coverage".to_owned(),
            "receiptType" => "m.read".to_owned(),
            "relType" => "m.thread".to_owned(),
            "keyName" => "displayname".to_owned(),
            "version" => "1".to_owned(),
            "sessionId" => "session".to_owned(),
            "protocol" | "networkId" => "irc".to_owned(),
            "idpId" => "idp".to_owned(),
            "appserviceId" => "bridge".to_owned(),
            "fileName" => "file.txt".to_owned(),
            other => panic!("no value for path parameter {other}"),
        }
    };

    let allowed = allowlist();
    let mut answered = 0;
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    let ops = operations();
    for (n, (method, template)) in ops.iter().enumerate() {
        let mut path = template.clone();
        while let Some(start) = path.find('{') {
            let end = path[start..].find('}').unwrap() + start;
            let v = value(&path[start + 1..end], n);
            path.replace_range(start..=end, &v);
        }
        // Calls that end a session or an account get an account of their own.
        let token = if path.contains("logout") || path.contains("deactivate") {
            s.user(&format!("cov{n}")).await
        } else {
            alice.clone()
        };
        // Long polls answer at once.
        let query = if method == Method::GET { "?timeout=0" } else { "" };
        let mut req = s.http.request(method.clone(), format!("{}{path}{query}", s.base)).bearer_auth(&token);
        if method != Method::GET && method != Method::DELETE {
            req = req.json(&json!({}));
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(status.as_u16() < 500, "{method} {template}: {status} {body}");
        let key = format!("{method} {template}");
        if unrecognized(status, &body) {
            if !allowed.contains_key(&key) {
                missing.push(format!("{key}: {status} {body}"));
            }
        } else {
            answered += 1;
            if allowed.contains_key(&key) {
                stale.push(format!("{key}: now answers {status}; take it off the allowlist"));
            }
        }
    }
    for op in allowed.keys() {
        assert!(
            ops.iter().any(|(m, p)| format!("{m} {p}") == *op),
            "the allowlist names {op}, which the spec does not have"
        );
    }
    eprintln!("{answered} of {} client-server operations answered", ops.len());
    assert!(missing.is_empty(), "operations not served and not on the allowlist:\n{}", missing.join("\n"));
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}
