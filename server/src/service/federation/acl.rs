//! Server access control lists (spec: "Server Access Control Lists", `m.room.server_acl`):
//! a room may keep servers out; every request about the room and every event a denied server
//! sends into it is refused.

use ruma::{RoomId, ServerName};
use serde_json::Value;

use super::Federation;
use crate::{
    error::{Error, Result},
    service::rooms::content_of,
};

impl Federation {
    /// Refuses `origin` when the room's ACL denies it.
    pub async fn check_acl(&self, origin: &ServerName, room_id: &RoomId) -> Result<()> {
        let Some(event) = self.rooms.current_state_event(room_id, "m.room.server_acl", "").await? else {
            return Ok(());
        };
        if allowed(&content_of(event.json()), origin) {
            Ok(())
        } else {
            Err(Error::forbidden(format!("Server {origin} is banned from this room by its server ACL")))
        }
    }
}

/// Whether an ACL's content lets `server` in: not an IP literal unless allowed, no `deny`
/// pattern matches, an `allow` pattern does (no `allow` at all: nobody).
pub fn allowed(acl: &Value, server: &ServerName) -> bool {
    let host = server.host();
    let patterns = |key: &str| -> Vec<&str> {
        acl[key].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
    };
    let ip_literal = host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok();
    if ip_literal && acl["allow_ip_literals"].as_bool() == Some(false) {
        return false;
    }
    if patterns("deny").iter().any(|p| glob(p, host)) {
        return false;
    }
    patterns("allow").iter().any(|p| glob(p, host))
}

/// `*` for any run of characters, `?` for one; case-insensitive, as server names are.
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    // Iterative matching with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '*' {
        i += 1;
    }
    i == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn name(s: &str) -> &ServerName {
        <&ServerName>::try_from(s).unwrap()
    }

    #[test]
    fn acls_follow_the_spec() {
        let acl = json!({"allow": ["*"], "deny": ["*.evil.example", "evil.example"], "allow_ip_literals": false});
        assert!(allowed(&acl, name("matrix.org")));
        assert!(allowed(&acl, name("Matrix.Org:8448")), "ports are not part of the match, case neither");
        assert!(!allowed(&acl, name("evil.example")));
        assert!(!allowed(&acl, name("a.b.evil.example")));
        assert!(allowed(&acl, name("notevil.example")));
        assert!(!allowed(&acl, name("1.2.3.4")));
        assert!(!allowed(&acl, name("[::1]:8448")));
        assert!(allowed(&json!({"allow": ["*"]}), name("1.2.3.4")), "IP literals are allowed by default");
        assert!(!allowed(&json!({}), name("matrix.org")), "no allow list lets nobody in");
        assert!(allowed(&json!({"allow": ["matrix.???"]}), name("matrix.org")));
        assert!(!allowed(&json!({"allow": ["matrix.???"]}), name("matrix.info")));
    }
}
