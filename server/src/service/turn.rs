//! A TURN server for the family's calls: the coturn configuration the dashboard's Reach page
//! writes. TURN relays call audio and video when two people's networks keep them from
//! connecting directly (most phones on mobile data, many home routers). Hearth hands its users
//! short-lived credentials for it (`GET /voip/turnServer`, see `voip`), made with a secret that
//! coturn shares (`use-auth-secret`, the TURN REST API).
//!
//! The configuration keeps coturn a relay for calls only: it never relays into private,
//! loopback or otherwise special networks (the same ranges the outbound policy refuses), so it
//! cannot be used to reach the home network from outside; quotas keep one user from using it
//! all. Pure text generation; `server/tests/turn.rs` runs Debian's coturn on the result.

use std::net::IpAddr;

use serde::Serialize;

use super::reverse_proxy::valid_host;

/// The name of the shared secret among the server's secrets, when the config file sets none.
pub const SECRET_NAME: &str = "turn_shared_secret";

/// What the admin tells the dashboard about the TURN server.
#[derive(Debug, Clone)]
pub struct TurnParams {
    /// The Matrix server name: coturn's realm.
    pub realm: String,
    /// Where apps reach the TURN server: a host name or a public IP address.
    pub host: String,
    /// TURN's port, UDP and TCP (3478).
    pub port: u16,
    /// The relay ports, UDP, forwarded on the router too.
    pub min_port: u16,
    pub max_port: u16,
    /// Behind NAT (a home router): the public address and this machine's address on the home
    /// network, so coturn tells peers where to send.
    pub external_ip: Option<(IpAddr, IpAddr)>,
    pub secret: String,
}

impl TurnParams {
    /// The usual setup: port 3478, 40 relay ports (two or three calls at once each take a few),
    /// no NAT mapping.
    pub fn standard(realm: &str, host: &str, secret: &str) -> Self {
        TurnParams {
            realm: realm.to_owned(),
            host: host.to_owned(),
            port: 3478,
            min_port: 49160,
            max_port: 49200,
            external_ip: None,
            secret: secret.to_owned(),
        }
    }

    /// Refuses what would make a configuration that does not work, in words for the admin.
    pub fn check(&self) -> Result<(), String> {
        if !(valid_host(&self.host) || self.host.parse::<IpAddr>().is_ok()) {
            return Err(format!(
                "`{}` is not a host name or IP address: give a name like turn.example.org, without turn: or a port",
                self.host
            ));
        }
        if self.port == 0 || self.min_port == 0 || self.min_port > self.max_port {
            return Err("ports: the TURN port must be set, and the relay range must go from low to high".into());
        }
        if (self.min_port..=self.max_port).contains(&self.port) {
            return Err("the TURN port must be outside the relay port range".into());
        }
        if let Some((public, private)) = self.external_ip
            && public.is_ipv4() != private.is_ipv4()
        {
            return Err("the public and private addresses must both be IPv4 or both IPv6".into());
        }
        Ok(())
    }

    /// What Hearth gives apps (`turn_uris`): UDP first, TCP for networks that block UDP.
    pub fn uris(&self) -> Vec<String> {
        let host = match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => self.host.clone(),
        };
        vec![format!("turn:{host}:{}?transport=udp", self.port), format!("turn:{host}:{}?transport=tcp", self.port)]
    }
}

/// The configuration and what to do with it.
#[derive(Debug, Clone, Serialize)]
pub struct TurnConfig {
    /// Where Debian's coturn package reads it.
    pub path: String,
    pub text: String,
    /// The steps, in order, in plain words.
    pub steps: Vec<String>,
    /// What Hearth will give apps once the admin applies it.
    pub uris: Vec<String>,
}

/// Networks a relay must never send into: private, loopback, link-local, shared and
/// documentation ranges, and the IPv6 forms that embed IPv4 (so they cannot sneak around the
/// IPv4 rules). coturn's `denied-peer-ip` takes inclusive ranges.
const DENIED_PEERS: &[&str] = &[
    "0.0.0.0-0.255.255.255",
    "10.0.0.0-10.255.255.255",
    "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "172.16.0.0-172.31.255.255",
    "192.0.0.0-192.0.0.255",
    "192.0.2.0-192.0.2.255",
    "192.88.99.0-192.88.99.255",
    "192.168.0.0-192.168.255.255",
    "198.18.0.0-198.19.255.255",
    "198.51.100.0-198.51.100.255",
    "203.0.113.0-203.0.113.255",
    "224.0.0.0-255.255.255.255",
    "::1",
    "::ffff:0.0.0.0-::ffff:255.255.255.255",
    "64:ff9b::-64:ff9b::ffff:ffff",
    "64:ff9b:1::-64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
    "100::-100::ffff:ffff:ffff:ffff",
    "2001::-2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
    "2002::-2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "ff00::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
];

pub fn coturn(p: &TurnParams) -> TurnConfig {
    let mut t = String::new();
    let mut line = |s: &str| {
        t.push_str(s);
        t.push('\n');
    };
    line("# coturn for Hearth, written by Hearth's dashboard (Reach page).");
    line("# A relay for the calls of this Matrix server's users, and nothing else.");
    line("");
    line(&format!("listening-port={}", p.port));
    line(&format!("min-port={}", p.min_port));
    line(&format!("max-port={}", p.max_port));
    if let Some((public, private)) = p.external_ip {
        line("# Behind a router: the public address, then this machine's address at home.");
        line(&format!("external-ip={public}/{private}"));
        // Relaying between two users both at home goes through this machine's own address.
        line(&format!("allowed-peer-ip={private}"));
    }
    line("");
    line("# Credentials come from Hearth: a secret shared with it, a password per user that expires.");
    line("use-auth-secret");
    line(&format!("static-auth-secret={}", p.secret));
    line(&format!("realm={}", p.realm));
    line("fingerprint");
    line("");
    line("# No TLS listener (calls are encrypted end to end anyway), no admin console.");
    line("no-tls");
    line("no-dtls");
    line("no-cli");
    line("");
    line("# Never relay into private or special networks: the home network stays out of reach.");
    line("no-multicast-peers");
    for range in DENIED_PEERS {
        line(&format!("denied-peer-ip={range}"));
    }
    line("");
    line("# At most 12 relays per user and 1200 in all; a little bandwidth per session (bytes/s).");
    line("user-quota=12");
    line("total-quota=1200");
    line("max-bps=3000000");
    let mut steps = vec![
        "Install coturn on the computer that will relay calls (Debian and Ubuntu: `sudo apt install coturn`).".to_owned(),
        "Save this configuration as /etc/turnserver.conf (it holds the shared secret: keep it private).".to_owned(),
        "On Debian and Ubuntu, set TURNSERVER_ENABLED=1 in /etc/default/coturn, then run `sudo systemctl restart coturn`.".to_owned(),
        format!(
            "On your router, forward port {} (UDP and TCP) and ports {}-{} (UDP) to that computer.",
            p.port, p.min_port, p.max_port
        ),
    ];
    if p.external_ip.is_none() {
        steps.push(
            "If that computer is behind your router, give its public and home addresses above, so coturn can tell \
             callers where to send."
                .to_owned(),
        );
    }
    steps.push(
        "Press \"Use this TURN server\": Hearth then gives people's apps these credentials for calls.".to_owned(),
    );
    TurnConfig { path: "/etc/turnserver.conf".to_owned(), text: t, steps, uris: p.uris() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_shares_the_secret_and_fences_off_private_networks() {
        let p = TurnParams::standard("example.org", "turn.example.org", "s3cret");
        p.check().unwrap();
        let c = coturn(&p);
        assert!(c.text.contains("static-auth-secret=s3cret\n"));
        assert!(c.text.contains("realm=example.org\n"));
        assert!(c.text.contains("denied-peer-ip=192.168.0.0-192.168.255.255\n"));
        assert!(!c.text.contains("allowed-peer-ip"), "nothing private is allowed without a NAT mapping");
        assert_eq!(c.uris, ["turn:turn.example.org:3478?transport=udp", "turn:turn.example.org:3478?transport=tcp"]);
    }

    #[test]
    fn nat_mapping_and_bad_input() {
        let mut p = TurnParams::standard("example.org", "2001:db8::1", "s");
        assert_eq!(p.uris()[0], "turn:[2001:db8::1]:3478?transport=udp");
        p.host = "turn.example.org".into();
        p.external_ip = Some(("203.0.113.7".parse().unwrap(), "192.168.1.10".parse().unwrap()));
        let c = coturn(&p);
        assert!(c.text.contains("external-ip=203.0.113.7/192.168.1.10\n"));
        assert!(c.text.contains("allowed-peer-ip=192.168.1.10\n"));
        p.external_ip = Some(("203.0.113.7".parse().unwrap(), "fd00::1".parse().unwrap()));
        assert!(p.check().is_err());
        for host in ["turn:x.org", "x.org:3478", "", "a b"] {
            assert!(TurnParams::standard("e", host, "s").check().is_err(), "{host}");
        }
        let mut p = TurnParams::standard("e", "x.org", "s");
        p.port = 49170;
        assert!(p.check().is_err(), "TURN port inside the relay range");
    }
}
