//! The reverse-proxy configurations the setup wizard hands out, checked by the real programs
//! (Debian's nginx, Caddy, Apache and HAProxy): each accepts its file, nginx and Caddy really
//! carry client, federation and `.well-known` requests to Hearth, and through HAProxy a client's
//! forged X-Forwarded-For does not choose its rate limit key.
//!
//! Ignored in a plain `cargo test` (they need the programs); scripts/test.sh installs them and
//! runs this file with `--ignored`.

mod common;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::TestServer;
use hearth_server::config::RateLimit;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PUBLIC_HOST: &str = "matrix.hearth.test";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A self-signed certificate for the public host and the server name; returns (cert, key,
/// both in one file).
fn certificate(dir: &Path) -> (String, String, String) {
    let (cert, key, both) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("both.pem"));
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=matrix.hearth.test"])
        .args(["-addext", "subjectAltName=DNS:matrix.hearth.test,DNS:hearth.test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(ok.success());
    let mut pem = std::fs::read(&cert).unwrap();
    pem.extend(std::fs::read(&key).unwrap());
    std::fs::write(&both, pem).unwrap();
    let s = |p: &Path| p.display().to_string();
    (s(&cert), s(&key), s(&both))
}

/// A server whose listener trusts X-Forwarded-For, as the generated configs ask.
async fn hearth(https: u16) -> TestServer {
    TestServer::start_with(|c| {
        c.listeners[0].x_forwarded = true;
        c.public_baseurl = Some(format!("https://{PUBLIC_HOST}:{https}/"));
    })
    .await
}

async fn generate(s: &TestServer, body: Value) -> Value {
    let running = s.running.as_ref().unwrap();
    let resp = reqwest::Client::new()
        .post(format!("http://{}/_hearth/admin/v1/reverse-proxy", running.admin_addr()))
        .bearer_auth(running.admin_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

/// Runs a config check; panics with the program's output when it fails.
fn accepts(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what} runs: {e}"));
    assert!(
        out.status.success(),
        "{what} refused the config:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: nginx's master then stops its workers too.
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

async fn wait_for(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nothing listens on {port}");
}

/// nginx in the foreground with `site` as its only site, files in `dir`; checked by `nginx -t`
/// first.
fn start_nginx(dir: &Path, site: &str) -> Proxy {
    let d = dir.display();
    std::fs::write(dir.join("hearth.conf"), site).unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/hearth.conf;\n}}\n"
        ),
    )
    .unwrap();
    accepts(Command::new("nginx").arg("-t").arg("-c").arg(&conf), "nginx -t");
    Proxy(Command::new("nginx").arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
}

/// Client, federation and well-known requests through the proxy on `https` and `fed`.
async fn requests_reach_hearth(s: &TestServer, https: u16, fed: u16) {
    let local = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve_to_addrs(PUBLIC_HOST, &[local(https), local(fed)])
        .resolve_to_addrs(common::SERVER_NAME, &[local(https)])
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let get = |url: String| {
        let http = http.clone();
        async move {
            let r = http.get(&url).send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
            (r.status(), r.text().await.unwrap())
        }
    };

    let (st, body) = get(format!("https://{PUBLIC_HOST}:{https}/_matrix/client/versions")).await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("v1.11"), "{body}");
    let (st, body) = get(format!("https://{PUBLIC_HOST}:{https}/.well-known/matrix/client")).await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains(&format!("https://{PUBLIC_HOST}:{https}")), "{body}");
    // Federation on its own port.
    let (st, body) = get(format!("https://{PUBLIC_HOST}:{fed}/_matrix/federation/v1/version")).await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("Hearth"), "{body}");
    let (st, body) = get(format!("https://{PUBLIC_HOST}:{fed}/_matrix/key/v2/server")).await;
    assert_eq!(st, 200, "{body}");
    // The server name's own site delegates to the public host.
    let (st, body) = get(format!("https://{}:{https}/.well-known/matrix/server", common::SERVER_NAME)).await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains(PUBLIC_HOST), "{body}");
    // The invite page is public; the admin API is not there at all.
    let (st, _) = get(format!("https://{PUBLIC_HOST}:{https}/_hearth/invite/abc")).await;
    assert_eq!(st, 200);
    // The proxy answers 404 itself for paths it does not forward.
    let (st, _) = get(format!("https://{PUBLIC_HOST}:{https}/_hearth/admin/v1/status")).await;
    assert_eq!(st, 404, "the admin API is not forwarded");
    let (st, _) = get(format!("https://{PUBLIC_HOST}:{https}/")).await;
    assert_eq!(st, 404, "only Hearth's paths are forwarded");

    // A signed-in client through the proxy: encoded IDs arrive intact, uploads pass.
    let token = s.user("alice").await;
    let r = http
        .get(format!("https://{PUBLIC_HOST}:{https}/_matrix/client/v3/profile/%40alice%3Ahearth.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = http
        .post(format!("https://{PUBLIC_HOST}:{https}/_matrix/media/v3/upload"))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; 3 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "a 3 MB upload passes the proxy");
}

#[tokio::test]
#[ignore = "needs nginx: scripts/test.sh runs it"]
async fn nginx_accepts_the_config_and_carries_matrix_traffic_to_hearth() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path());
    let (https, fed) = (free_port(), free_port());
    let s = hearth(https).await;
    let generated = generate(&s, json!({"kind": "nginx", "public_host": PUBLIC_HOST, "https_port": https, "federation_port": fed, "certificate": cert, "certificate_key": key})).await;
    let _nginx = start_nginx(dir.path(), generated["text"].as_str().unwrap());
    wait_for(https).await;
    wait_for(fed).await;
    requests_reach_hearth(&s, https, fed).await;
}

#[tokio::test]
#[ignore = "needs Caddy: scripts/test.sh runs it"]
async fn caddy_accepts_the_config_and_carries_matrix_traffic_to_hearth() {
    let dir = tempfile::tempdir().unwrap();
    let (https, fed) = (free_port(), free_port());
    let s = hearth(https).await;
    let generated = generate(&s, json!({"kind": "caddy", "public_host": PUBLIC_HOST, "https_port": https, "federation_port": fed, "caddy_tls": "internal"})).await;
    let d = dir.path().display();
    // Global options for a throwaway Caddy: no admin endpoint, no port 80, state in the temp dir.
    let file = format!(
        "{{\n  admin off\n  skip_install_trust\n  auto_https disable_redirects\n  storage file_system {d}/state\n}}\n\n{}",
        generated["text"].as_str().unwrap()
    );
    let caddyfile = dir.path().join("Caddyfile");
    std::fs::write(&caddyfile, file).unwrap();
    let env = |c: &mut Command| {
        c.env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"));
    };
    let mut validate = Command::new("caddy");
    validate.args(["validate", "--adapter", "caddyfile", "--config"]).arg(&caddyfile);
    env(&mut validate);
    accepts(&mut validate, "caddy validate");
    let mut run = Command::new("caddy");
    run.args(["run", "--adapter", "caddyfile", "--config"]).arg(&caddyfile).stdout(Stdio::null()).stderr(Stdio::null());
    env(&mut run);
    let _caddy = Proxy(run.spawn().unwrap());
    wait_for(https).await;
    wait_for(fed).await;
    requests_reach_hearth(&s, https, fed).await;
}

#[tokio::test]
#[ignore = "needs Apache: scripts/test.sh runs it"]
async fn apache_accepts_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path());
    let s = hearth(443).await;
    let generated = generate(
        &s,
        json!({"kind": "apache", "public_host": PUBLIC_HOST, "certificate": cert, "certificate_key": key}),
    )
    .await;
    let d = dir.path().display();
    std::fs::write(dir.path().join("hearth.conf"), generated["text"].as_str().unwrap()).unwrap();
    let modules = ["mpm_event", "authz_core", "ssl", "socache_shmcb", "proxy", "proxy_http", "headers"]
        .iter()
        .map(|m| format!("LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n"))
        .collect::<String>();
    let conf = dir.path().join("apache2.conf");
    std::fs::write(
        &conf,
        format!("ServerRoot /etc/apache2\nPidFile {d}/apache.pid\nErrorLog {d}/error.log\nMutex file:{d} default\n{modules}Listen 443\nInclude {d}/hearth.conf\n"),
    )
    .unwrap();
    accepts(Command::new("apache2").arg("-t").arg("-f").arg(&conf), "apache2 -t");
    assert!(generated["steps"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().contains("a2enmod")));
}

/// HAProxy's `option forwardfor` adds its own X-Forwarded-For line after whatever the client
/// sent, so a client can put any address in front: Hearth must take the one HAProxy added.
#[tokio::test]
#[ignore = "needs HAProxy: scripts/test.sh runs it"]
async fn haproxy_carries_traffic_and_a_forged_forwarded_for_does_not_escape_the_login_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, both) = certificate(dir.path());
    let (https, fed) = (free_port(), free_port());
    let s = TestServer::start_with(|c| {
        c.listeners[0].x_forwarded = true;
        c.public_baseurl = Some(format!("https://{PUBLIC_HOST}:{https}/"));
        c.rc_login.address = RateLimit { per_second: 0.001, burst_count: 3.0 };
    })
    .await;
    let generated = generate(
        &s,
        json!({"kind": "haproxy", "public_host": PUBLIC_HOST, "https_port": https, "federation_port": fed, "certificate": both}),
    )
    .await;
    let conf = dir.path().join("haproxy.cfg");
    std::fs::write(&conf, generated["text"].as_str().unwrap()).unwrap();
    accepts(Command::new("haproxy").arg("-c").arg("-f").arg(&conf), "haproxy -c");
    let _haproxy = Proxy(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(https).await;

    s.user("ivy").await;
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve(PUBLIC_HOST, std::net::SocketAddr::from(([127, 0, 0, 1], https)))
        .build()
        .unwrap();
    let mut statuses = Vec::new();
    for forged in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"] {
        let r = http
            .post(format!("https://{PUBLIC_HOST}:{https}/_matrix/client/v3/login"))
            .header("x-forwarded-for", forged)
            .json(&json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "ivy"}, "password": "a guess"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [403, 403, 403, 429], "three guesses from one address, then the limit");
}

#[tokio::test]
async fn the_wizard_refuses_host_names_and_paths_that_could_break_a_config() {
    let s = TestServer::start().await;
    let running = s.running.as_ref().unwrap();
    let post = |body: Value| {
        reqwest::Client::new()
            .post(format!("http://{}/_hearth/admin/v1/reverse-proxy", running.admin_addr()))
            .bearer_auth(running.admin_token())
            .json(&body)
            .send()
    };
    for body in [
        json!({"kind": "nginx", "public_host": "example.org; include /etc/shadow"}),
        json!({"kind": "nginx", "public_host": "https://example.org/"}),
        json!({"kind": "nginx", "public_host": "example.org", "certificate": "/etc/x.pem; }"}),
        json!({"kind": "nginx", "public_host": "example.org", "https_port": 8448}),
        json!({"kind": "nginx", "public_host": "example.org", "caddy_tls": "internal"}),
        json!({"kind": "lighttpd", "public_host": "example.org"}),
    ] {
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    let r = post(json!({"kind": "nginx", "public_host": "Matrix.Example.org."})).await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["text"].as_str().unwrap().contains("server_name matrix.example.org;"), "{v}");
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains(&format!("proxy_pass http://{};", s.running.as_ref().unwrap().local_addr())),
        "{v}"
    );
}

/// relayd runs only on OpenBSD, so its file is checked against the grammar of relayd.conf(5)
/// for the statements Hearth writes: tables, an `http protocol` block of filter rules, and
/// `relay` blocks; every table and protocol used must be defined.
fn check_relayd_grammar(text: &str) -> Result<(), String> {
    // Tokens: quoted strings, <tables>, braces, words; comments run to the end of the line.
    let mut tokens: Vec<(usize, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let mut chars = line.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
            } else if c == '"' {
                chars.next();
                let s: String = chars.by_ref().take_while(|&c| c != '"').collect();
                tokens.push((n + 1, format!("\"{s}\"")));
            } else if c == '{' || c == '}' {
                chars.next();
                tokens.push((n + 1, c.to_string()));
            } else {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '{' || c == '}' {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                tokens.push((n + 1, w));
            }
        }
    }
    let mut lines_of: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for (n, t) in &tokens {
        lines_of.entry(*n).or_default().push(t.clone());
    }
    let quoted = |t: &str| t.len() >= 2 && t.starts_with('"') && t.ends_with('"');
    let table = |t: &str| t.len() >= 3 && t.starts_with('<') && t.ends_with('>');
    let (mut tables, mut protocols, mut used_tables, mut used_protocols) = (vec![], vec![], vec![], vec![]);
    let mut block: Option<&str> = None;
    for (n, words) in &lines_of {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        let err = |why: &str| Err(format!("line {n} `{}`: {why}", w.join(" ")));
        match (block, w.as_slice()) {
            (None, ["table", name, "{", .., "}"]) if table(name) => tables.push(name.to_string()),
            (None, ["http", "protocol", name, "{"]) if quoted(name) => {
                protocols.push(name.to_string());
                block = Some("protocol");
            }
            (None, ["relay", name, "{"]) if quoted(name) => block = Some("relay"),
            (Some(_), ["}"]) => block = None,
            (Some("protocol"), ["tls", "keypair", name]) if quoted(name) => {}
            (Some("protocol"), ["match", "request", "header", "set", h, "value", v]) if quoted(h) && quoted(v) => {}
            (Some("protocol"), ["block", "request"]) => {}
            (Some("protocol"), ["pass", "request", "path", p, "forward", "to", t]) if quoted(p) && table(t) => {
                used_tables.push(t.to_string())
            }
            (Some("relay"), ["listen", "on", _addr, "port", port, rest @ ..])
                if port.parse::<u16>().is_ok() && (rest.is_empty() || rest == ["tls"]) => {}
            (Some("relay"), ["protocol", name]) if quoted(name) => used_protocols.push(name.to_string()),
            (Some("relay"), ["forward", "to", t, "port", port]) if table(t) && port.parse::<u16>().is_ok() => {
                used_tables.push(t.to_string())
            }
            _ => return err("not a statement of relayd.conf(5) in this context"),
        }
    }
    if block.is_some() {
        return Err("a block is not closed".to_owned());
    }
    for t in used_tables {
        if !tables.contains(&t) {
            return Err(format!("table {t} is used but not defined"));
        }
    }
    for p in used_protocols {
        if !protocols.contains(&p) {
            return Err(format!("protocol {p} is used but not defined"));
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_relayd_config_follows_relayd_conf_grammar() {
    let s = TestServer::start().await;
    let generated = generate(&s, json!({"kind": "relayd", "public_host": PUBLIC_HOST})).await;
    let text = generated["text"].as_str().unwrap();
    check_relayd_grammar(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for prefix in ["/_matrix/*", "/_synapse/client/*", "/.well-known/matrix/*", "/_hearth/invite/*"] {
        assert!(text.contains(&format!("pass request path \"{prefix}\" forward to <hearth>")), "{prefix}\n{text}");
    }
    assert!(
        text.contains("listen on 0.0.0.0 port 443 tls") && text.contains("listen on 0.0.0.0 port 8448 tls"),
        "{text}"
    );
    assert!(
        text.contains(&format!("forward to <hearth> port {}", s.running.as_ref().unwrap().local_addr().port())),
        "{text}"
    );
    // The checker does catch mistakes.
    assert!(check_relayd_grammar("relay \"x\" {\n\tprotocol \"nope\"\n}\n").is_err());
    assert!(
        check_relayd_grammar("http protocol \"p\" {\n\tpass request path \"/x\" forward to <missing>\n}\n").is_err()
    );
    assert!(check_relayd_grammar("relay \"x\" {\n\tlisten on 0.0.0.0 port 99999 tls\n}\n").is_err());
}

/// A private CA and a certificate it signed for the public host and the server name:
/// (CA certificate, certificate, key).
fn ca_signed_certificate(dir: &Path) -> (String, String, String) {
    let p = |name: &str| dir.join(name).display().to_string();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=Hearth test CA",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=matrix.hearth.test",
        "-keyout",
        &p("site.key"),
        "-out",
        &p("site.csr"),
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:matrix.hearth.test,DNS:hearth.test\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        &p("site.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p("san.ext"),
        "-out",
        &p("site.pem"),
    ]);
    (p("ca.pem"), p("site.pem"), p("site.key"))
}

/// dnsmasq answering for hearth.test and its subdomains with 127.0.0.1, and an SRV record
/// sending federation for hearth.test to matrix.hearth.test:`fed`.
fn start_dnsmasq(port: u16, fed: u16) -> Proxy {
    let child = Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--pid-file=",
        ])
        .arg(format!("--port={port}"))
        .arg("--address=/hearth.test/127.0.0.1")
        .arg(format!("--srv-host=_matrix-fed._tcp.hearth.test,matrix.hearth.test,{fed}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (Debian package dnsmasq-base) runs");
    Proxy(child)
}

async fn run_check(s: &TestServer) -> Vec<Value> {
    let running = s.running.as_ref().unwrap();
    let v: Value = reqwest::Client::new()
        .post(format!("http://{}/_hearth/admin/v1/setup/check", running.admin_addr()))
        .bearer_auth(running.admin_token())
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["checks"].as_array().unwrap_or_else(|| panic!("{v}")).clone()
}

fn federation(checks: &[Value]) -> &Value {
    checks.iter().find(|c| c["name"].as_str().unwrap().contains("federation")).unwrap()
}

#[tokio::test]
#[ignore = "needs nginx, dnsmasq, openssl and port 443: scripts/test.sh runs it"]
async fn the_wizard_check_finds_hearth_the_way_other_servers_would() {
    assert!(
        std::net::TcpListener::bind("127.0.0.1:443").is_ok(),
        "this test serves https://hearth.test/ and needs port 443 (run as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_signed_certificate(dir.path());
    let (dns_port, fed) = (free_port(), free_port());
    let _dns = start_dnsmasq(dns_port, fed);
    // Hearth resolves names through that DNS server and trusts the private CA, as it would
    // trust a public one.
    let s = TestServer::start_with(|c| {
        c.public_baseurl = Some(format!("https://{PUBLIC_HOST}/"));
        c.dns_servers = vec![format!("127.0.0.1:{dns_port}")];
        c.federation_custom_ca_list = vec![ca.clone().into()];
    })
    .await;
    let site = |https: u16, cert: &str, key: &str| json!({"kind": "nginx", "public_host": PUBLIC_HOST, "https_port": https, "federation_port": fed, "certificate": cert, "certificate_key": key});

    // The whole setup on standard ports: apps reach https://matrix.hearth.test/, the server
    // name's site delegates apps and servers there (.well-known), and the key document answers
    // there with a certificate valid for that name. Well-known comes before SRV (spec:
    // "Resolving server names").
    let generated = generate(&s, site(443, &cert, &key)).await;
    let nginx = start_nginx(dir.path(), generated["text"].as_str().unwrap());
    wait_for(443).await;
    let checks = run_check(&s).await;
    for c in &checks {
        assert_eq!(c["result"], "pass", "{c}");
    }
    let fed_check = federation(&checks);
    assert!(
        fed_check["detail"]
            .as_str()
            .unwrap()
            .contains("https://hearth.test/.well-known/matrix/server delegates to matrix.hearth.test:443"),
        "{fed_check}"
    );
    drop(nginx);

    // No site on port 443 for the server name: other servers fall back to the SRV record, and
    // the certificate must then be valid for the server name itself.
    let other = free_port();
    let generated = generate(&s, site(other, &cert, &key)).await;
    let nginx = start_nginx(dir.path(), generated["text"].as_str().unwrap());
    wait_for(fed).await;
    let checks = run_check(&s).await;
    let fed_check = federation(&checks);
    assert_eq!(fed_check["result"], "pass", "{fed_check}");
    assert!(
        fed_check["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("_matrix-fed._tcp.hearth.test points to matrix.hearth.test:{fed}")),
        "{fed_check}"
    );
    assert_eq!(checks[0]["result"], "fail", "apps cannot reach https://matrix.hearth.test/ now: {}", checks[0]);
    drop(nginx);

    // A certificate nobody vouches for: the report says so and what to do.
    let (self_signed, self_key, _) = certificate(dir.path());
    let generated = generate(&s, site(other, &self_signed, &self_key)).await;
    let nginx = start_nginx(dir.path(), generated["text"].as_str().unwrap());
    wait_for(fed).await;
    let fed_check = federation(&run_check(&s).await).clone();
    assert_eq!(fed_check["result"], "fail", "{fed_check}");
    assert!(fed_check["detail"].as_str().unwrap().contains("certificate"), "{fed_check}");
    assert!(fed_check["fix"].as_str().unwrap().contains("certificate"), "{fed_check}");
    drop(nginx);

    // Nothing answers: the report names the address and how to open it.
    let fed_check = federation(&run_check(&s).await).clone();
    assert_eq!(fed_check["result"], "fail", "{fed_check}");
    assert!(
        fed_check["detail"].as_str().unwrap().contains(&format!("nothing answers at matrix.hearth.test:{fed}")),
        "{fed_check}"
    );
    assert!(fed_check["fix"].as_str().unwrap().contains("router"), "{fed_check}");
}
