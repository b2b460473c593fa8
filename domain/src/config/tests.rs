//! Unit tests of the configuration: parsing, defaults (the documented file equals them), and
//! each refusal naming its key and line.

use super::*;

#[test]
fn operations_keys_are_parsed_and_bad_values_named() {
    let c = Config::parse(
        "[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n[metrics]\nlisten = \"127.0.0.1:9464\"\n[log]\nformat = \"json\"\n",
        "f",
    )
    .unwrap();
    assert!(c.http.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
    assert!(
        c.http
            .trusted_proxies
            .contains("::ffff:10.1.2.3".parse().unwrap())
    );
    assert!(c.http.trusted_proxies.contains("::1".parse().unwrap()));
    assert!(!c.http.trusted_proxies.contains("11.0.0.1".parse().unwrap()));
    assert_eq!(c.metrics.listen.0, Some("127.0.0.1:9464".parse().unwrap()));
    assert_eq!(c.log.format, LogFormat::Json);
    for (text, key) in [
        (
            "[http]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            "http.trusted_proxies",
        ),
        ("[metrics]\nlisten = \"localhost\"\n", "metrics.listen"),
        ("[log]\nformat = \"xml\"\n", "log.format"),
    ] {
        let e = Config::parse(text, "f").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains(key), "{e}");
    }
}

#[test]
fn built_in_default_parses_with_the_documented_values() {
    let c = Config::default();
    assert_eq!(c.server.domain.as_str(), "localhost");
    assert_eq!(c.server.listen, "127.0.0.1:8443".parse().unwrap());
    assert_eq!(c.data_dir(), Path::new("./data"));
    assert_eq!(c.residency.region.as_str(), "CN");
    assert_eq!(c.master_key_path(), Path::new("./data/master.key"));
}

#[test]
fn password_hash_concurrency_zero_means_one_per_core() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let c = Config::parse(DEFAULT_CONFIG_TOML, "default").unwrap();
    assert_eq!(c.security.hash_concurrency(), cores);
    let text = with(
        "password_hash_concurrency = 0",
        "password_hash_concurrency = 3",
    );
    let c = Config::parse(&text, "f.toml").unwrap();
    assert_eq!(c.security.hash_concurrency(), 3);
    let text = with(
        "password_hash_concurrency = 0",
        "password_hash_concurrency = 65",
    );
    let e = Config::parse(&text, "f.toml").unwrap_err().to_string();
    assert!(e.contains("password_hash_concurrency"), "{e}");
}

fn with(replace: &str, by: &str) -> String {
    assert!(DEFAULT_CONFIG_TOML.contains(replace), "{replace}");
    DEFAULT_CONFIG_TOML.replacen(replace, by, 1)
}

fn line_of(text: &str, needle: &str) -> usize {
    text[..text.find(needle).unwrap()].matches('\n').count() + 1
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let text = with("[http]\n", "[http]\nmax_bodybytes = 5\n");
    let e = Config::parse(&text, "f.toml").unwrap_err().to_string();
    let line = line_of(&text, "max_bodybytes");
    assert!(e.contains(&format!("line {line}")), "{e}");
    assert!(e.contains("http.max_bodybytes"), "{e}");
    assert!(e.contains("unknown field"), "{e}");
}

#[test]
fn wrong_type_is_named_with_its_line() {
    let text = with("max_connections = 10000", "max_connections = \"many\"");
    let e = Config::parse(&text, "f.toml").unwrap_err().to_string();
    assert!(
        e.contains(&format!("line {}", line_of(&text, "max_connections"))),
        "{e}"
    );
    assert!(e.contains("http.max_connections"), "{e}");
}

#[test]
fn closed_friend_requests_must_outlive_the_decline_cool_down() {
    let e = Config::parse(
        "[friends]\ndeclined_resend_days = 30\nclosed_requests_days = 10\n",
        "f",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("friends.closed_requests_days"), "{e}");
    assert!(Config::parse("[friends]\ndeclined_resend_days = 10\n", "f").is_ok());
    let e = Config::parse("[friends]\nrequests_per_day = 0\n", "f")
        .unwrap_err()
        .to_string();
    assert!(e.contains("friends.requests_per_day"), "{e}");
}

#[test]
fn a_security_log_maximum_below_its_legal_minimum_is_refused() {
    let e = Config::parse(
        "[retention]\nsecurity_logs_min_days = 183\nsecurity_logs_max_days = 90\n",
        "f",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("retention.security_logs_max_days") && e.contains("line 3"),
        "{e}"
    );
    for (min, max, key, line) in [
        (0, 0, "security_logs_min_days", 2),
        (182, 0, "security_logs_min_days", 2),
        (30, 30, "security_logs_min_days", 2),
        (183, 30, "security_logs_max_days", 3),
    ] {
        let e = Config::parse(
            &format!(
                "[retention]\nsecurity_logs_min_days = {min}\nsecurity_logs_max_days = {max}\n"
            ),
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(&format!("retention.{key}")) && e.contains(&format!("line {line}")),
            "{min}/{max}: {e}"
        );
    }
    assert!(Config::parse("[retention]\nsecurity_logs_min_days = 183\n", "f").is_ok());
    assert!(Config::parse("[retention]\nsecurity_logs_max_days = 0\n", "f").is_ok());
    assert!(Config::parse("[retention]\nsecurity_logs_max_days = 183\n", "f").is_ok());
}

#[test]
fn federation_peers_are_validated_with_key_and_line() {
    let peer = |domain: &str, url: &str| {
        format!(
            "[server]\ndomain = \"a.example\"\n[federation]\n[[federation.peers]]\n\
             domain = \"{domain}\"\nurl = \"{url}\"\nregion = \"CN\"\n"
        )
    };
    let ok = Config::parse(&peer("b.example", "https://10.0.0.2:8443"), "f").unwrap();
    let p = &ok.federation.peers[0];
    assert_eq!((p.url.host.as_str(), p.url.port), ("10.0.0.2", 8443));
    assert_eq!(p.ca_file.0, None, "public roots unless a CA file is named");
    let default_port = Config::parse(&peer("b.example", "https://b.example/"), "f").unwrap();
    assert_eq!(default_port.federation.peers[0].url.port, 443);
    for (domain, url, key, reason) in [
        ("b.example", "http://b.example", "url", "https://"),
        ("b.example", "https://b.example/path", "url", "https://host"),
        ("b.example", "https://b.example:0", "url", "https://host"),
        ("B!", "https://b.example", "domain", "DNS name"),
        ("a.example", "https://b.example", "domain", "own domain"),
    ] {
        let e = Config::parse(&peer(domain, url), "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains(reason), "{domain} {url}: {e}");
        assert!(e.contains("line "), "{e}");
    }
    let twice = format!(
        "{}[[federation.peers]]\ndomain = \"b.example\"\nurl = \"https://x\"\nregion = \"EU\"\n",
        peer("b.example", "https://b.example")
    );
    let e = Config::parse(&twice, "f").unwrap_err().to_string();
    assert!(e.contains("listed twice"), "{e}");
    let missing = format!(
        "{}ca_file = \"/nonexistent/ca.pem\"\n",
        peer("b.example", "https://b.example")
    );
    let e = Config::parse(&missing, "f")
        .unwrap()
        .check_files()
        .unwrap_err()
        .to_string();
    assert!(e.contains("federation.peers.ca_file"), "{e}");
}

#[test]
fn bad_values_are_refused_with_key_and_reason() {
    let cases = [
        ("region = \"CN\"", "region = \"china\"", "residency.region"),
        (
            "domain = \"localhost\"",
            "domain = \"Bad_Domain\"",
            "server.domain",
        ),
        (
            "listen = \"127.0.0.1:8443\"",
            "listen = \"nowhere\"",
            "server.listen",
        ),
        (
            "max_body_bytes = 1048576",
            "max_body_bytes = -1",
            "http.max_body_bytes",
        ),
        ("level = \"info\"", "level = \"loud\"", "log.level"),
        (
            "effective = \"2026-11-29\"",
            "effective = \"2026-02-30\"",
            "policy.effective",
        ),
        (
            "data_dir = \"./data\"",
            "data_dir = \"\"",
            "storage.data_dir",
        ),
    ];
    for (from, to, key) in cases {
        let text = with(from, to);
        let e = Config::parse(&text, "f.toml").unwrap_err().to_string();
        assert!(e.contains(key), "{to}: {e}");
        assert!(
            e.contains(&format!("line {}", line_of(&text, to))),
            "{to}: {e}"
        );
    }
}

#[test]
fn documented_default_file_equals_the_built_in_defaults() {
    let documented = Config::parse(DEFAULT_CONFIG_TOML, "default").unwrap();
    assert_eq!(documented, Config::default());
    assert_eq!(Config::parse("", "empty").unwrap(), Config::default());
}

#[test]
fn partial_file_keeps_defaults_for_the_rest() {
    let c = Config::parse("[server]\ndomain = \"chat.example.org\"\n", "f").unwrap();
    assert_eq!(c.server.domain.as_str(), "chat.example.org");
    assert_eq!(c.server.listen, ServerConfig::default().listen);
    assert_eq!(c.http, HttpConfig::default());
}

#[test]
fn unknown_section_is_refused() {
    let e = Config::parse("[chat]\nx = 1\n", "f.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 1") && e.contains("chat"), "{e}");
}

#[test]
fn half_configured_tls_is_refused_with_key_and_line() {
    let e = Config::parse(
        "[log]\nlevel = \"info\"\n[tls]\ncert_file = \"/etc/c.pem\"\n",
        "f.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("line 4") && e.contains("tls.cert_file") && e.contains("key_file"),
        "{e}"
    );
    let e = Config::parse("[tls]\nkey_file = \"/etc/k.pem\"\n", "f.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("tls.key_file"), "{e}");
}

#[test]
fn missing_configured_files_are_reported_by_key() {
    let c = Config::parse("[policy]\nzh_file = \"/nonexistent/zh.md\"\n", "f.toml").unwrap();
    let e = c.check_files().unwrap_err().to_string();
    assert!(
        e.contains("policy.zh_file") && e.contains("/nonexistent/zh.md"),
        "{e}"
    );
    assert!(Config::default().check_files().is_ok());
}

#[test]
fn malformed_toml_names_the_line() {
    let text = with("[tls]\n", "[tls\n");
    let e = Config::parse(&text, "f.toml").unwrap_err().to_string();
    assert!(
        e.contains(&format!("line {}", line_of(&text, "[tls\n"))),
        "{e}"
    );
}

#[test]
fn rate_limits_are_configured_and_checked() {
    let c = Config::parse(
        "[rate_limit]\nregister_per_hour = 0\nmax_clients = 5000\n",
        "f",
    )
    .unwrap();
    assert_eq!(c.rate_limit.register_per_hour.get(), 0);
    assert_eq!(c.rate_limit.max_clients.get(), 5000);
    assert_eq!(
        c.rate_limit.login_per_minute,
        RateLimitConfig::default().login_per_minute
    );
    let e = Config::parse("[rate_limit]\nmax_clients = 10\n", "f")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2") && e.contains("rate_limit.max_clients"),
        "{e}"
    );
}
