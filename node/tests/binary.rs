//! The `chat-node` binary as an operator runs it: the command-line interface, first start on
//! the built-in defaults (moved to a temporary directory and port), the one printed URL line,
//! and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_chat-node");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run chat-node");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn print_default_config_prints_the_documented_defaults() {
    let (code, out, _) = run(&["--print-default-config"]);
    assert_eq!(code, 0);
    assert_eq!(out, node::DEFAULT_CONFIG_TOML);
    let parsed = node::Config::parse(&out, "printed").unwrap();
    assert_eq!(parsed, node::Config::default());
}

#[test]
fn dev_cert_writes_a_certificate_for_the_domain_and_refuses_a_bad_domain() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let (code, stdout, _) = run(&[
        "dev-cert",
        "--domain",
        "a.example",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("cert.pem"), "{stdout}");
    let cert = std::fs::read_to_string(out.join("cert.pem")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the key is private");
    let (code, _, stderr) = run(&["dev-cert", "--domain", "Not A Domain", "--out", "x"]);
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!Path::new("x").exists());
}

#[test]
fn check_config_accepts_good_files_and_names_key_and_line_of_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[server]\ndomain = \"chat.example.org\"\n").unwrap();
    let (code, out, _) = run(&["check-config", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("valid"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\ndomain = \"chat.example.org\"\n\n[http]\nmax_connections = 0\n",
    )
    .unwrap();
    let (code, _, err) = run(&["check-config", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    assert!(
        err.contains("line 5") && err.contains("http.max_connections"),
        "{err}"
    );

    let (code, _, err) = run(&[
        "check-config",
        dir.path().join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");

    let (code, _, err) = run(&["--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "the node refuses to start on a bad config: {err}");
    let (code, _, _) = run(&["--no-such-flag"]);
    assert_eq!(code, 2);
}

/// A node process; killed on drop, so a failing test never leaves one running.
struct Running {
    child: Child,
    line: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start(workdir: &Path, config: &Path) -> Running {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .current_dir(workdir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chat-node");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read URL line");
    Running { child, line }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> i32 {
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("chat-node did not exit within 10 s of SIGTERM");
}

/// GET /health over TLS, trusting the node's own certificate.
fn health(port: u16, cert: &Path) -> String {
    exchange(
        port,
        cert,
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
}

/// Sends one raw HTTP/1.1 request (which must ask for `Connection: close`) over TLS.
fn exchange(port: u16, cert: &Path, request: &[u8]) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(cert).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        tls.write_all(request).await.unwrap();
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    })
}

#[test]
fn first_start_creates_its_files_prints_one_url_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    // The built-in defaults, with only the port moved off 8443 so tests can run side by side.
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let mut node = start(dir.path(), &config);
    assert!(
        node.line
            .starts_with("chat-node serving https://localhost:"),
        "{}",
        node.line
    );
    let port: u16 = node
        .line
        .rsplit(':')
        .next()
        .unwrap()
        .trim()
        .trim_end_matches(')')
        .parse()
        .unwrap();
    let data = dir.path().join("data");
    for f in ["node.redb", "master.key", "tls/cert.pem", "tls/key.pem"] {
        assert!(data.join(f).exists(), "{f} created in ./data");
    }
    let answer = health(port, &data.join("tls/cert.pem"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"status\":\"ok\""));
    sigterm(&node.child);
    assert_eq!(wait_exit(&mut node.child), 0, "clean exit on SIGTERM");

    // Second start reuses the certificate and key.
    let cert = std::fs::read(data.join("tls/cert.pem")).unwrap();
    let mut again = start(dir.path(), &config);
    assert_eq!(std::fs::read(data.join("tls/cert.pem")).unwrap(), cert);
    sigterm(&again.child);
    assert_eq!(wait_exit(&mut again.child), 0);
}

#[test]
fn a_second_node_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let mut first = start(dir.path(), &config);
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by a running node"), "{err}");
    sigterm(&first.child);
    assert_eq!(wait_exit(&mut first.child), 0);
}

fn json_request(method: &str, path: &str, token: Option<&str>, body: &str) -> Vec<u8> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn logs_never_contain_phone_numbers_passwords_tokens_or_profile_text_even_at_trace() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let log = dir.path().join("stderr.log");
    let (mut node, port) = start_logging_to(dir.path(), &config, &log, Some("trace"));
    let child = &mut node.child;
    let cert = dir.path().join("data/tls/cert.pem");

    let (phone, password, nick, bio) =
        ("+8613987654321", "SecretPass4471", "LogNickZ9", "LogBioQ3");
    let reg = format!(
        r#"{{"phone":"{phone}","handle":"logger","password":"{password}","nickname":"{nick}","accept_policy":"2026-11-29"}}"#
    );
    assert!(
        exchange(
            port,
            &cert,
            &json_request("POST", "/api/v1/accounts", None, &reg)
        )
        .starts_with("HTTP/1.1 201")
    );
    let login = format!(
        r#"{{"login":"{phone}","password":"{password}","device":{{"name":"LogDeviceK8"}}}}"#
    );
    let answer = exchange(
        port,
        &cert,
        &json_request("POST", "/api/v1/sessions", None, &login),
    );
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let token = answer
        .split("\"token\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let patch = format!(r#"{{"bio":{{"value":"{bio}"}}}}"#);
    assert!(
        exchange(
            port,
            &cert,
            &json_request("PATCH", "/api/v1/me", Some(&token), &patch)
        )
        .starts_with("HTTP/1.1 200")
    );
    let wrong = format!(r#"{{"login":"{phone}","password":"WrongPass9911"}}"#);
    exchange(
        port,
        &cert,
        &json_request("POST", "/api/v1/sessions", None, &wrong),
    );
    exchange(
        port,
        &cert,
        &json_request(
            "GET",
            "/api/v1/users/logger@localhost",
            Some("GarbageToken77"),
            "",
        ),
    );
    sigterm(child);
    assert_eq!(wait_exit(child), 0);

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("node started"), "logging was on: {logged}");
    for secret in [
        phone,
        &phone[3..],
        password,
        nick,
        bio,
        "LogDeviceK8",
        &token,
        "WrongPass9911",
        "GarbageToken77",
    ] {
        assert!(!logged.contains(secret), "{secret} appears in the log");
    }
}

/// One JSON request over its own connection: (status, body). `None` if the node is gone.
fn api(
    port: u16,
    cert: &Path,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, serde_json::Value)> {
    let request = json_request(method, path, token, body);
    let answer = std::panic::catch_unwind(|| exchange(port, cert, &request)).ok()?;
    let status: u16 = answer.split(' ').nth(1)?.parse().ok()?;
    let json = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Some((
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    ))
}

fn start_port(workdir: &Path, config: &Path) -> (Running, u16) {
    let node = start(workdir, config);
    let port = node
        .line
        .rsplit(':')
        .next()
        .unwrap()
        .trim()
        .trim_end_matches(')')
        .parse()
        .unwrap();
    (node, port)
}

#[test]
fn every_acknowledged_message_survives_kill_9_once_and_retries_store_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let (mut node, port) = start_port(dir.path(), &config);
    let cert = dir.path().join("data/tls/cert.pem");
    let call = |port, m: &str, p: &str, t: Option<&str>, b: &str| {
        api(port, &cert, m, p, t, b).expect("node answers")
    };
    for (h, phone) in [("killa", "+8613900000001"), ("killb", "+8613900000002")] {
        let body = format!(
            r#"{{"phone":"{phone}","handle":"{h}","password":"password-{h}","nickname":"N","accept_policy":"2026-11-29"}}"#
        );
        assert_eq!(call(port, "POST", "/api/v1/accounts", None, &body).0, 201);
    }
    let login = |port, h: &str| {
        let (s, v) = call(
            port,
            "POST",
            "/api/v1/sessions",
            None,
            &format!(r#"{{"login":"{h}","password":"password-{h}"}}"#),
        );
        assert_eq!(s, 201);
        v["token"].as_str().unwrap().to_string()
    };
    let a = login(port, "killa");
    call(
        port,
        "PUT",
        "/api/v1/me/consents/cloud_sync",
        Some(&a),
        r#"{"granted":true}"#,
    );
    let (s, v) = call(
        port,
        "POST",
        "/api/v1/conversations",
        Some(&a),
        r#"{"kind":"direct","with":"killb@localhost"}"#,
    );
    assert_eq!(s, 201);
    let conv = v["id"].as_str().unwrap().to_string();

    // Four senders, bounded; each records what got a 201.
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(String, u64)>::new()));
    let mut threads = Vec::new();
    for w in 0..4 {
        let (a, conv, cert, acked) = (a.clone(), conv.clone(), cert.clone(), Arc::clone(&acked));
        threads.push(std::thread::spawn(move || {
            for k in 0..150 {
                let txn = format!("w{w}-{k}");
                let body =
                    format!(r#"{{"txn_id":"{txn}","body":{{"type":"text","text":"{txn}"}}}}"#);
                match api(
                    port,
                    &cert,
                    "POST",
                    &format!("/api/v1/conversations/{conv}/messages"),
                    Some(&a),
                    &body,
                ) {
                    Some((201, v)) => acked
                        .lock()
                        .unwrap()
                        .push((txn, v["seq"].as_u64().unwrap())),
                    _ => return,
                }
            }
        }));
    }
    for _ in 0..3000 {
        if acked.lock().unwrap().len() >= 120 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = Command::new("kill")
        .args(["-KILL", &node.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = node.child.wait();
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 100,
        "load was running when killed ({} acknowledged)",
        acked.len()
    );

    let (mut node, port) = start_port(dir.path(), &config);
    // Retry every message of every sender with its original txn id: acknowledged or in flight
    // when the node died, each must end up stored exactly once.
    for w in 0..4 {
        for k in 0..150 {
            let txn = format!("w{w}-{k}");
            if acked.iter().any(|(t, _)| *t == txn) || k % 10 == 0 {
                let body =
                    format!(r#"{{"txn_id":"{txn}","body":{{"type":"text","text":"{txn}"}}}}"#);
                let (s, v) = call(
                    port,
                    "POST",
                    &format!("/api/v1/conversations/{conv}/messages"),
                    Some(&a),
                    &body,
                );
                assert_eq!(s, 201);
                if let Some((_, seq)) = acked.iter().find(|(t, _)| *t == txn) {
                    assert_eq!(v["seq"].as_u64(), Some(*seq), "{txn}: the original answer");
                }
            }
        }
    }
    let mut history = Vec::new();
    let mut after = 0;
    loop {
        let (s, v) = call(
            port,
            "GET",
            &format!("/api/v1/conversations/{conv}/messages?after={after}&limit=200"),
            Some(&a),
            "",
        );
        assert_eq!(s, 200);
        let page = v["messages"].as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        for m in &page {
            history.push((
                m["body"]["text"].as_str().unwrap().to_string(),
                m["seq"].as_u64().unwrap(),
            ));
        }
        after = history.last().unwrap().1;
    }
    let seqs: Vec<u64> = history.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        seqs,
        (1..=history.len() as u64).collect::<Vec<_>>(),
        "gap-free after the crash"
    );
    let mut texts: Vec<&String> = history.iter().map(|(t, _)| t).collect();
    texts.sort();
    let before = texts.len();
    texts.dedup();
    assert_eq!(texts.len(), before, "nothing stored twice");
    for (txn, seq) in &acked {
        assert!(
            history.contains(&(txn.clone(), *seq)),
            "acknowledged {txn} (seq {seq}) is there"
        );
    }
    sigterm(&node.child);
    assert_eq!(wait_exit(&mut node.child), 0);
}

/// Starts the binary with its standard error in `log` and `RUST_LOG` set to `rust_log` (or
/// unset); returns it and its port.
fn start_logging_to(
    workdir: &Path,
    config: &Path,
    log: &Path,
    rust_log: Option<&str>,
) -> (Running, u16) {
    let mut command = Command::new(BIN);
    command.arg("--config").arg(config).current_dir(workdir);
    match rust_log {
        Some(level) => command.env("RUST_LOG", level),
        None => command.env_remove("RUST_LOG"),
    };
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .rsplit(':')
        .next()
        .unwrap()
        .trim()
        .trim_end_matches(')')
        .parse()
        .unwrap();
    (Running { child, line }, port)
}

/// Polls `log` (bounded: 10 s) until a line satisfies `want`; returns that line.
fn wait_for_line(log: &Path, want: impl Fn(&str) -> bool) -> Option<String> {
    for _ in 0..200 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| want(l)) {
            return Some(l.to_string());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn json_logs_are_one_object_a_line_and_sighup_changes_the_level_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    let write_config = |level: &str| {
        std::fs::write(
            &config,
            format!("[server]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"{level}\"\nformat = \"json\"\n"),
        )
        .unwrap()
    };
    write_config("warn");
    let log = dir.path().join("stderr.log");
    let (mut node, port) = start_logging_to(dir.path(), &config, &log, None);
    let cert = dir.path().join("data/tls/cert.pem");
    assert!(health(port, &cert).starts_with("HTTP/1.1 200"));
    // At warn, neither the info "node started" nor the debug request line.
    let before = std::fs::read_to_string(&log).unwrap();
    assert!(!before.contains("node started"), "{before}");

    write_config("debug");
    let status = Command::new("kill")
        .args(["-HUP", &node.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_line(&log, |l| l.contains("SIGHUP: log level set"))
        .expect("the new level is announced");
    assert!(health(port, &cert).starts_with("HTTP/1.1 200"));
    let request = wait_for_line(&log, |l| l.contains("\"route\":\"/health\""))
        .expect("debug request lines after SIGHUP");
    let v: serde_json::Value = serde_json::from_str(&request).unwrap();
    assert_eq!(v["level"], "DEBUG", "{request}");
    assert_eq!(v["fields"]["status"], 200, "{request}");
    // A file that no longer parses keeps the level and says why, with the key.
    std::fs::write(&config, "[log]\nlevel = \"loud\"\n").unwrap();
    Command::new("kill")
        .args(["-HUP", &node.child.id().to_string()])
        .status()
        .unwrap();
    wait_for_line(&log, |l| {
        l.contains("configuration not re-read") && l.contains("log.level")
    })
    .expect("a bad file is reported");
    sigterm(&node.child);
    assert_eq!(wait_exit(&mut node.child), 0);
    let all = std::fs::read_to_string(&log).unwrap();
    for l in all.lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
}

#[test]
fn the_example_systemd_unit_passes_systemd_analyze_verify() {
    let unit = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/deploy/shanliao.service"
    );
    let text = std::fs::read_to_string(unit).unwrap();
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "SKIPPED the_example_systemd_unit_passes_systemd_analyze_verify: no systemd-analyze here"
        );
        return;
    }
    // The unit as shipped, with the binary this build made in place of /usr/local/bin.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("shanliao.service");
    std::fs::write(&copy, text.replace("/usr/local/bin/chat-node", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("shanliao")).collect();
    assert!(ours.is_empty(), "{err}");
    for needed in [
        "User=shanliao",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/shanliao",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(text.contains(needed), "{needed}");
    }
}
