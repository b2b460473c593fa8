//! Property tests: whatever text the parser is given, it answers without panicking, and a
//! refusal names the file and, for a bad value, the line and key it is on.

use super::*;
use proptest::prelude::*;

/// `line N` and ``key `a.b` `` named in a refusal, if any.
fn named(message: &str) -> (Option<usize>, Option<String>) {
    let line = message.split("line ").nth(1).and_then(|rest| {
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
    });
    let key = message
        .split("key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .map(str::to_string);
    (line, key)
}

/// The `key = value` lines of the default file: (1-based line, table, key).
fn default_keys() -> Vec<(usize, String, String)> {
    let mut table = String::new();
    let mut out = Vec::new();
    for (i, line) in DEFAULT_CONFIG_TOML.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            table = t.trim_matches(|c| c == '[' || c == ']').to_string();
        } else if !t.starts_with('#')
            && let Some((k, _)) = t.split_once('=')
        {
            out.push((i + 1, table.clone(), k.trim().to_string()));
        }
    }
    out
}

/// A TOML value of any type, as TOML text.
fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (-5i64..200_000).prop_map(|v| v.to_string()),
        any::<bool>().prop_map(|v| v.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        any::<String>().prop_map(|s| toml::Value::String(s).to_string()),
        "[a-zA-Z0-9._:/-]{0,20}".prop_map(|s| toml::Value::String(s).to_string()),
        Just("1979-05-27".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|kv| {
                let body: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", body.join(", "))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_is_answered_without_a_panic(text in any::<String>()) {
        if let Err(e) = Config::parse(&text, "f.toml") {
            let m = e.to_string();
            prop_assert!(m.starts_with("config f.toml"), "{m}");
            if let (Some(line), _) = named(&m) {
                prop_assert!(line >= 1 && line <= text.lines().count() + 1, "{m}");
            }
        }
    }

    #[test]
    fn toml_like_text_is_answered_without_a_panic(
        text in "(\\[[a-z_.]{0,12}\\]?\n|[a-z_]{1,12} ?= ?[-0-9a-z\"\\[\\]{},.:]{0,16}\n|#.*\n|\n){0,12}"
    ) {
        if let Err(e) = Config::parse(&text, "f.toml") {
            let m = e.to_string();
            prop_assert!(m.starts_with("config f.toml: line "), "{m}");
        }
    }

    /// Each documented key given a value of any type: accepted, or refused naming that
    /// key on that line (or, for a rule between two keys, the other key on its line).
    #[test]
    fn a_mutated_value_is_refused_at_its_key_and_line(
        pick in any::<prop::sample::Index>(),
        value in toml_value(),
    ) {
        let keys = default_keys();
        let (line_no, table, key) = &keys[pick.index(keys.len())];
        let text: String = DEFAULT_CONFIG_TOML
            .lines()
            .enumerate()
            .map(|(i, l)| if i + 1 == *line_no { format!("{key} = {value}\n") } else { format!("{l}\n") })
            .collect();
        if let Err(e) = Config::parse(&text, "f.toml") {
            let m = e.to_string();
            let (line, named_key) = named(&m);
            let line = line.unwrap_or_else(|| panic!("no line in {m:?}"));
            let named_key = named_key.unwrap_or_else(|| panic!("no key in {m:?}"));
            // The named line is where the named key is written.
            let written = text.lines().nth(line - 1).unwrap_or("");
            let last = named_key.rsplit('.').next().unwrap_or("");
            prop_assert!(
                written.trim_start().starts_with(&format!("{last} =")),
                "{m} names line {line}: {written:?}"
            );
            let full = format!("{table}.{key}");
            if named_key != full {
                // Only the rules between two keys name another one.
                prop_assert!(
                    matches!(full.as_str(), "media.quota_bytes" | "retention.security_logs_min_days" | "server.domain"),
                    "{full} = {value}: {m}"
                );
            } else {
                prop_assert_eq!(line, *line_no, "{}", m);
            }
        }
    }

    /// Lines of the default file dropped, doubled or swapped: never a panic, and every
    /// refusal names the file and a line.
    #[test]
    fn a_mutated_file_is_answered_with_a_line(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3), 1..6),
    ) {
        let mut lines: Vec<&str> = DEFAULT_CONFIG_TOML.lines().collect();
        for (at, op) in edits {
            let i = at.index(lines.len());
            match op {
                0 => { lines.remove(i); }
                1 => { let l = lines[i]; lines.insert(i, l); }
                _ => { let j = (i + 1) % lines.len(); lines.swap(i, j); }
            }
        }
        let text = lines.join("\n");
        if let Err(e) = Config::parse(&text, "f.toml") {
            let m = e.to_string();
            prop_assert!(m.starts_with("config f.toml: line "), "{m}");
        }
    }
}
