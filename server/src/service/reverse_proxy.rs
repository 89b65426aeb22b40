//! Reverse-proxy configurations for the setup wizard's "my own domain" reach mode: the file to
//! give nginx, Caddy, Apache or HAProxy so that client traffic, federation traffic and the
//! `.well-known` documents reach Hearth. Pure text generation; the programs themselves check
//! the results in `server/tests/reverse_proxy.rs`.
//!
//! What every configuration does, whatever the program:
//! - HTTPS on `https_port` (443) for `public_host`, and on `federation_port` (8448, where other
//!   servers look when no delegation is published), forwarding only Hearth's public paths:
//!   `/_matrix`, `/_synapse/client`, `/.well-known/matrix` and the invite page (`/_hearth/invite`,
//!   `/_hearth/assets`). The admin listener is never proxied.
//! - The request URI is passed on unchanged (no decoding: Matrix IDs contain `%2F` and friends).
//! - The client's address in `X-Forwarded-For` (trusted on loopback listeners once the wizard's
//!   Connections step says "own domain", or with `x_forwarded = true` on the listener).
//! - Uploads up to `max_upload_size`, and long requests (sync long-polls up to 10 minutes).
//! - When the server name is another domain than `public_host`, that domain's HTTPS site
//!   forwards `/.well-known/matrix/` too, so users can be `@alice:example.org` while the server
//!   runs at `matrix.example.org`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    Nginx,
    Caddy,
    Apache,
    Haproxy,
    /// OpenBSD's relayd.
    Relayd,
}

/// How the proxy gets its certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Files on disk, per host: Let's Encrypt's layout unless the caller names others.
    Files { cert: String, key: String, server_name_cert: String, server_name_key: String },
    /// Caddy obtains and renews certificates itself (its default).
    CaddyAutomatic,
    /// Caddy's own local CA (for tests and private networks).
    CaddyInternal,
}

#[derive(Debug, Clone)]
pub struct ProxyParams {
    /// The Matrix server name (the part after `:` in user IDs).
    pub server_name: String,
    /// The host name clients and servers connect to.
    pub public_host: String,
    /// Hearth's plain-HTTP listener, e.g. `127.0.0.1:8008`.
    pub upstream: String,
    pub https_port: u16,
    pub federation_port: u16,
    pub max_body_bytes: u64,
    pub tls: Tls,
}

impl ProxyParams {
    /// The usual setup: ports 443 and 8448, Let's Encrypt certificates (Caddy: automatic).
    pub fn standard(
        kind: ProxyKind,
        server_name: &str,
        public_host: &str,
        upstream: &str,
        max_body_bytes: u64,
    ) -> Self {
        let le = |host: &str, file: &str| format!("/etc/letsencrypt/live/{host}/{file}");
        let tls = match kind {
            ProxyKind::Caddy => Tls::CaddyAutomatic,
            // HAProxy wants certificate and key in one file.
            // relayd finds /etc/ssl/<name>.crt and /etc/ssl/private/<name>.key by the keypair name.
            ProxyKind::Relayd => Tls::Files {
                cert: public_host.to_owned(),
                key: String::new(),
                server_name_cert: server_name.to_owned(),
                server_name_key: String::new(),
            },
            ProxyKind::Haproxy => Tls::Files {
                cert: format!("/etc/haproxy/certs/{public_host}.pem"),
                key: String::new(),
                server_name_cert: format!("/etc/haproxy/certs/{server_name}.pem"),
                server_name_key: String::new(),
            },
            _ => Tls::Files {
                cert: le(public_host, "fullchain.pem"),
                key: le(public_host, "privkey.pem"),
                server_name_cert: le(server_name, "fullchain.pem"),
                server_name_key: le(server_name, "privkey.pem"),
            },
        };
        Self {
            server_name: server_name.to_owned(),
            public_host: public_host.to_owned(),
            upstream: upstream.to_owned(),
            https_port: 443,
            federation_port: 8448,
            max_body_bytes,
            tls,
        }
    }

    fn delegated(&self) -> bool {
        !self.server_name.eq_ignore_ascii_case(&self.public_host)
    }
}

/// The path prefixes that reach Hearth.
pub const PUBLIC_PREFIXES: &[&str] =
    &["/_matrix", "/_synapse/client", "/.well-known/matrix", "/_hearth/invite", "/_hearth/assets"];

/// A generated configuration and what to do with it.
#[derive(Debug, Serialize)]
pub struct ProxyConfig {
    pub kind: ProxyKind,
    /// Where the file usually goes.
    pub path: String,
    pub text: String,
    /// The steps after writing the file, in order, in plain words.
    pub steps: Vec<String>,
}

pub fn generate(kind: ProxyKind, p: &ProxyParams) -> ProxyConfig {
    match kind {
        ProxyKind::Nginx => nginx(p),
        ProxyKind::Caddy => caddy(p),
        ProxyKind::Apache => apache(p),
        ProxyKind::Haproxy => haproxy(p),
        ProxyKind::Relayd => relayd(p),
    }
}

fn files(p: &ProxyParams) -> (&str, &str, &str, &str) {
    match &p.tls {
        Tls::Files { cert, key, server_name_cert, server_name_key } => (cert, key, server_name_cert, server_name_key),
        _ => ("", "", "", ""),
    }
}

fn header(p: &ProxyParams, comment: &str) -> String {
    format!(
        "{comment} Hearth: Matrix homeserver {} at {}, generated by Hearth's setup.\n\
         {comment} Forwards Matrix clients (port {}), other Matrix servers (port {}) and the\n\
         {comment} .well-known documents to Hearth on {} (on this computer: Hearth trusts the\n\
         {comment} client addresses passed on once its setup says \"my own domain\").\n",
        p.server_name, p.public_host, p.https_port, p.federation_port, p.upstream
    )
}

fn nginx(p: &ProxyParams) -> ProxyConfig {
    let (cert, key, sn_cert, sn_key) = files(p);
    let prefixes = PUBLIC_PREFIXES.iter().map(|s| regex_escape(s)).collect::<Vec<_>>().join("|");
    let mut t = header(p, "#");
    t.push_str(&format!(
        "server {{
    listen {https} ssl http2;
    listen [::]:{https} ssl http2;
    # Other Matrix servers connect here unless they find the .well-known delegation.
    listen {fed} ssl http2;
    listen [::]:{fed} ssl http2;
    server_name {host};

    ssl_certificate {cert};
    ssl_certificate_key {key};

    location ~ ^({prefixes}) {{
        # No URI after the address: the request goes on exactly as it came (encoded IDs intact).
        proxy_pass http://{up};
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Host $host;
        proxy_http_version 1.1;
        # Uploads: Hearth enforces max_upload_size itself while the body streams in.
        client_max_body_size {body};
        proxy_request_buffering off;
        # /sync waits up to a few minutes for news.
        proxy_read_timeout 600s;
    }}

    # Nothing else lives on this name.
    location / {{
        return 404;
    }}
}}
",
        https = p.https_port,
        fed = p.federation_port,
        host = p.public_host,
        up = p.upstream,
        body = p.max_body_bytes,
    ));
    if p.delegated() {
        t.push_str(&format!(
            "
# {sn} is the server name: its site must answer /.well-known/matrix/ for Hearth. If another
# web site already runs on {sn}, copy this location block into that site instead.
server {{
    listen {https} ssl http2;
    listen [::]:{https} ssl http2;
    server_name {sn};

    ssl_certificate {sn_cert};
    ssl_certificate_key {sn_key};

    location /.well-known/matrix/ {{
        proxy_pass http://{up};
        proxy_set_header Host $host;
    }}
}}
",
            sn = p.server_name,
            https = p.https_port,
            up = p.upstream,
        ));
    }
    ProxyConfig {
        kind: ProxyKind::Nginx,
        path: "/etc/nginx/sites-available/hearth".to_owned(),
        text: t,
        steps: vec![
            dns_step(p),
            format!("Get certificates for {} (for example with certbot) so the files named in ssl_certificate exist.", hosts(p)),
            "Save the file as /etc/nginx/sites-available/hearth and link it: ln -s /etc/nginx/sites-available/hearth /etc/nginx/sites-enabled/".to_owned(),
            "Check and load it: nginx -t && systemctl reload nginx".to_owned(),
        ],
    }
}

fn caddy(p: &ProxyParams) -> ProxyConfig {
    let tls = match p.tls {
        Tls::CaddyInternal => "\n    tls internal",
        _ => "",
    };
    let matcher = PUBLIC_PREFIXES.iter().map(|s| format!("{s}*")).collect::<Vec<_>>().join(" ");
    let mut t = header(p, "#");
    t.push_str(&format!(
        "{host}:{https}, {host}:{fed} {{{tls}
    @hearth path {matcher}
    handle @hearth {{
        request_body {{
            max_size {body}
        }}
        # Caddy passes the request URI unchanged and sets X-Forwarded-For itself.
        reverse_proxy {up} {{
            transport http {{
                read_timeout 600s
            }}
        }}
    }}
    # Nothing else lives on this name.
    handle {{
        respond 404
    }}
}}
",
        host = p.public_host,
        https = p.https_port,
        fed = p.federation_port,
        up = p.upstream,
        body = p.max_body_bytes,
    ));
    if p.delegated() {
        t.push_str(&format!(
            "
# {sn} is the server name: its site must answer /.well-known/matrix/ for Hearth. If another
# site block for {sn} exists, copy this reverse_proxy line into it instead.
{sn}:{https} {{{tls}
    reverse_proxy /.well-known/matrix/* {up}
}}
",
            sn = p.server_name,
            https = p.https_port,
            up = p.upstream,
        ));
    }
    ProxyConfig {
        kind: ProxyKind::Caddy,
        path: "/etc/caddy/Caddyfile".to_owned(),
        text: t,
        steps: vec![
            format!("{} Caddy then gets certificates by itself.", dns_step(p)),
            "Add this to /etc/caddy/Caddyfile (or save it as the whole file).".to_owned(),
            "Check and load it: caddy validate --config /etc/caddy/Caddyfile && systemctl reload caddy".to_owned(),
        ],
    }
}

fn apache(p: &ProxyParams) -> ProxyConfig {
    let (cert, key, sn_cert, sn_key) = files(p);
    let passes = |prefixes: &[&str]| {
        prefixes
            .iter()
            .map(|s| {
                format!(
                    "    ProxyPass {s} http://{up}{s} nocanon timeout=600\n    ProxyPassReverse {s} http://{up}{s}\n",
                    up = p.upstream
                )
            })
            .collect::<String>()
    };
    let vhost = |port: u16| {
        format!(
            "<VirtualHost *:{port}>
    ServerName {host}
    SSLEngine on
    SSLCertificateFile {cert}
    SSLCertificateKeyFile {key}

    # Pass encoded IDs on untouched (nocanon below, and here).
    AllowEncodedSlashes NoDecode
    ProxyPreserveHost On
    ProxyRequests Off
    RequestHeader set X-Forwarded-Proto https
    LimitRequestBody {body}
{passes}</VirtualHost>
",
            host = p.public_host,
            body = p.max_body_bytes.min(2_147_483_647),
            passes = passes(PUBLIC_PREFIXES),
        )
    };
    let mut t = header(p, "#");
    t.push_str("# Needs: a2enmod ssl proxy proxy_http headers\n");
    if p.https_port != 443 {
        t.push_str(&format!("Listen {}\n", p.https_port));
    }
    t.push_str(&format!("Listen {}\n\n", p.federation_port));
    t.push_str(&vhost(p.https_port));
    t.push('\n');
    t.push_str(&vhost(p.federation_port));
    if p.delegated() {
        t.push_str(&format!(
            "
# {sn} is the server name: its site must answer /.well-known/matrix/ for Hearth. If another
# virtual host for {sn} exists, copy these two Proxy lines into it instead.
<VirtualHost *:{https}>
    ServerName {sn}
    SSLEngine on
    SSLCertificateFile {sn_cert}
    SSLCertificateKeyFile {sn_key}
    ProxyPreserveHost On
    ProxyPass /.well-known/matrix http://{up}/.well-known/matrix nocanon
    ProxyPassReverse /.well-known/matrix http://{up}/.well-known/matrix
</VirtualHost>
",
            sn = p.server_name,
            https = p.https_port,
            up = p.upstream,
        ));
    }
    ProxyConfig {
        kind: ProxyKind::Apache,
        path: "/etc/apache2/sites-available/hearth.conf".to_owned(),
        text: t,
        steps: vec![
            dns_step(p),
            format!(
                "Get certificates for {} (for example with certbot) so the files named in SSLCertificateFile exist.",
                hosts(p)
            ),
            "Turn on the modules: a2enmod ssl proxy proxy_http headers".to_owned(),
            "Save the file as /etc/apache2/sites-available/hearth.conf and enable it: a2ensite hearth".to_owned(),
            "Check and load it: apache2ctl -t && systemctl reload apache2".to_owned(),
        ],
    }
}

fn haproxy(p: &ProxyParams) -> ProxyConfig {
    let (cert, _, sn_cert, _) = files(p);
    let crt = if p.delegated() { format!("crt {cert} crt {sn_cert}") } else { format!("crt {cert}") };
    let mut t = header(p, "#");
    t.push_str(&format!(
        "global
    log /dev/log local0

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 600s
    timeout server 600s

frontend matrix
    bind *:{https} ssl {crt} alpn h2,http/1.1
    bind *:{fed} ssl {crt} alpn h2,http/1.1
    option forwardfor
    http-request set-header X-Forwarded-Proto https
    acl hearth_path path_beg {prefixes}
    acl server_name_host hdr(host),field(1,:) -i {sn}
    acl well_known path_beg /.well-known/matrix
    http-request deny deny_status 413 if {{ req.hdr_val(content-length) gt {body} }}
    use_backend hearth if hearth_path !server_name_host
    use_backend hearth if server_name_host well_known

backend hearth
    server hearth {up}
",
        https = p.https_port,
        fed = p.federation_port,
        prefixes = PUBLIC_PREFIXES.join(" "),
        sn = p.server_name,
        up = p.upstream,
        body = p.max_body_bytes,
    ));
    ProxyConfig {
        kind: ProxyKind::Haproxy,
        path: "/etc/haproxy/haproxy.cfg".to_owned(),
        text: t,
        steps: vec![
            dns_step(p),
            format!(
                "Get certificates for {} and put each certificate and its key together in one file, as named after crt.",
                hosts(p)
            ),
            "Merge the frontend and backend into /etc/haproxy/haproxy.cfg (or use the whole file).".to_owned(),
            "Check and load it: haproxy -c -f /etc/haproxy/haproxy.cfg && systemctl reload haproxy".to_owned(),
        ],
    }
}

fn relayd(p: &ProxyParams) -> ProxyConfig {
    let (keypair, _, sn_keypair, _) = files(p);
    let (up_host, up_port) = p.upstream.rsplit_once(':').unwrap_or((&p.upstream, "8008"));
    let mut t = header(p, "#");
    t.push_str(&format!("table <hearth> {{ {up_host} }}\n\nhttp protocol \"matrix\" {{\n"));
    t.push_str(&format!("\ttls keypair \"{keypair}\"\n"));
    if p.delegated() {
        t.push_str(&format!("\ttls keypair \"{sn_keypair}\"\n"));
    }
    t.push_str("\tmatch request header set \"X-Forwarded-For\" value \"$REMOTE_ADDR\"\n");
    t.push_str("\tmatch request header set \"X-Forwarded-Proto\" value \"https\"\n");
    t.push_str("\t# The last matching rule wins: everything is refused but Hearth's paths.\n\tblock request\n");
    for prefix in PUBLIC_PREFIXES {
        t.push_str(&format!("\tpass request path \"{prefix}/*\" forward to <hearth>\n"));
    }
    t.push_str("}\n");
    for (name, port) in [("matrix", p.https_port), ("matrix-federation", p.federation_port)] {
        t.push_str(&format!(
            "\nrelay \"{name}\" {{\n\tlisten on 0.0.0.0 port {port} tls\n\tprotocol \"matrix\"\n\tforward to <hearth> port {up_port}\n}}\n"
        ));
    }
    ProxyConfig {
        kind: ProxyKind::Relayd,
        path: "/etc/relayd.conf".to_owned(),
        text: t,
        steps: vec![
            dns_step(p),
            format!(
                "Get certificates for {} (acme-client does this on OpenBSD) as /etc/ssl/<name>.crt and /etc/ssl/private/<name>.key.",
                hosts(p)
            ),
            "Add this to /etc/relayd.conf (relayd has no per-name sites: the server name's web site must forward /.well-known/matrix/ to Hearth itself).".to_owned(),
            "Check and load it: relayd -n && rcctl enable relayd && rcctl restart relayd".to_owned(),
        ],
    }
}

/// The DNS and router part, the same for every web server.
fn dns_step(p: &ProxyParams) -> String {
    format!(
        "DNS: at your domain's registrar, create an A record (and an AAAA record for IPv6) for {} pointing at this machine's public address; at home, forward ports {} and {} on your router to this machine.",
        hosts(p),
        p.https_port,
        p.federation_port
    )
}

fn hosts(p: &ProxyParams) -> String {
    if p.delegated() { format!("{} and {}", p.public_host, p.server_name) } else { p.public_host.clone() }
}

fn regex_escape(s: &str) -> String {
    s.replace('.', "\\.")
}

/// Whether `s` is a plain host name a configuration may contain (no spaces, quotes, braces or
/// anything that could end a directive).
pub fn valid_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_site_appears_only_when_delegated() {
        for kind in [ProxyKind::Nginx, ProxyKind::Caddy, ProxyKind::Apache] {
            let same =
                generate(kind, &ProxyParams::standard(kind, "example.org", "example.org", "127.0.0.1:8008", 1000));
            let delegated = generate(
                kind,
                &ProxyParams::standard(kind, "example.org", "matrix.example.org", "127.0.0.1:8008", 1000),
            );
            assert!(!same.text.contains("is the server name"), "{kind:?}");
            assert!(delegated.text.contains("example.org is the server name"), "{kind:?}");
            for prefix in PUBLIC_PREFIXES {
                assert!(same.text.contains(&regex_escape(prefix)) || same.text.contains(prefix), "{kind:?} {prefix}");
            }
            assert!(!same.text.contains("/_hearth/admin"), "the admin API is never proxied");
        }
    }

    #[test]
    fn host_names_that_could_break_a_config_are_refused() {
        assert!(valid_host("matrix.example.org"));
        assert!(!valid_host("example.org; include /etc/passwd"));
        assert!(!valid_host("a b"));
        assert!(!valid_host("x}"));
        assert!(!valid_host(""));
    }
}
