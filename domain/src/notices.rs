//! The notices the node writes itself — a new sign-in, a new privacy policy version, an answered
//! request — as a stable code with named parameters, stored so; and their words in Chinese and
//! English, put together when a notice is read, in the reader's language. An operator's notices
//! (`incident notify`) and notices stored before codes existed are free text and stay as written.

use crate::policy::Lang;
use crate::time::Millis;
use storage::{EventRecord, NoticeContent, NoticeKind};

/// `sign_in.new_device` {`at`}: a device signed in to the account.
pub const SIGN_IN: &str = "sign_in.new_device";
/// `policy.published` {`version`, `effective`}: a new privacy policy version.
pub const POLICY: &str = "policy.published";
/// `policy.published_narrowing` {`version`, `effective`}: a new version that narrows rights.
pub const POLICY_NARROWING: &str = "policy.published_narrowing";
/// `request.answered` {`request`}: the admin answered one of the user's requests.
pub const REQUEST: &str = "request.answered";

/// A notice's title and text in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    pub title: String,
    pub text: String,
}

/// Title and text templates of one code in one language; `{name}` is parameter `name`.
struct Template {
    title: &'static str,
    text: &'static str,
}

const fn t(title: &'static str, text: &'static str) -> Template {
    Template { title, text }
}

/// Every code with its Chinese and English words.
const CATALOGUE: [(&str, Template, Template); 4] = [
    (
        SIGN_IN,
        t("新设备登录", "有新设备于 {at} 登录了你的账号。"),
        t(
            "New sign-in",
            "A new device signed in to your account at {at}.",
        ),
    ),
    (
        POLICY,
        t(
            "隐私政策 {version}（{effective} 起生效）",
            "隐私政策 {version} 版将于 {effective} 生效。请通过 GET /api/v1/policy/versions/{version} 阅读，并通过 POST /api/v1/me/policy/accept 接受。",
        ),
        t(
            "Privacy policy {version} from {effective}",
            "Version {version} of the privacy policy takes effect on {effective}. Read it at GET /api/v1/policy/versions/{version} and accept it with POST /api/v1/me/policy/accept.",
        ),
    ),
    (
        POLICY_NARROWING,
        t(
            "隐私政策 {version}（{effective} 起生效）",
            "隐私政策 {version} 版将于 {effective} 生效。请通过 GET /api/v1/policy/versions/{version} 阅读，并通过 POST /api/v1/me/policy/accept 接受。这一版缩小了你的权利：自该日起，在你接受之前，可选功能暂停；基本功能照常可用。",
        ),
        t(
            "Privacy policy {version} from {effective}",
            "Version {version} of the privacy policy takes effect on {effective}. Read it at GET /api/v1/policy/versions/{version} and accept it with POST /api/v1/me/policy/accept. It narrows your rights: from that day, optional features are paused until you accept it; basic functions keep working.",
        ),
    ),
    (
        REQUEST,
        t(
            "请求 #{request} 已答复",
            "你的请求 #{request} 已有答复：GET /api/v1/me/requests 可查看。",
        ),
        t(
            "Request #{request} answered",
            "Your request #{request} has been answered: GET /api/v1/me/requests shows the answer.",
        ),
    ),
];

fn coded(kind: NoticeKind, code: &str, params: &[(&str, String)]) -> EventRecord {
    EventRecord::Notice {
        kind,
        content: NoticeContent::Coded {
            code: code.to_string(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
        },
    }
}

/// The notice that a device signed in at `at`.
pub fn sign_in(at: Millis) -> EventRecord {
    coded(NoticeKind::Security, SIGN_IN, &[("at", at.to_rfc3339())])
}

/// The notice of policy `version`, in effect from `effective` (a date, `YYYY-MM-DD`), which
/// `narrows` rights or not.
pub fn policy(version: &str, effective: &str, narrows: bool) -> EventRecord {
    let code = if narrows { POLICY_NARROWING } else { POLICY };
    coded(
        NoticeKind::Policy,
        code,
        &[
            ("version", version.to_string()),
            ("effective", effective.to_string()),
        ],
    )
}

/// The notice that request `id` has an answer.
pub fn request_answered(id: u64) -> EventRecord {
    coded(NoticeKind::Request, REQUEST, &[("request", id.to_string())])
}

/// `template` with each `{name}` replaced by parameter `name`'s value (in one pass, so a value
/// is never read as a placeholder); a placeholder without a parameter stays as written.
fn fill(template: &str, params: &[(String, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| (v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The words of notice `code` with `params` in `lang`; None for a code this node does not know
/// (written by a newer version).
pub fn render(code: &str, params: &[(String, String)], lang: Lang) -> Option<Words> {
    let (_, zh, en) = CATALOGUE.iter().find(|(c, _, _)| *c == code)?;
    let tpl = match lang {
        Lang::Zh => zh,
        Lang::En => en,
    };
    Some(Words {
        title: fill(tpl.title, params),
        text: fill(tpl.text, params),
    })
}

/// The words a reader in `lang` sees for `content`: free text as written; a coded notice in
/// `lang`, or — for a code this node does not know — the code itself as the title.
pub fn words(content: &NoticeContent, lang: Lang) -> Words {
    match content {
        NoticeContent::Text { title, text } => Words {
            title: title.clone(),
            text: text.clone(),
        },
        NoticeContent::Coded { code, params } => render(code, params, lang).unwrap_or(Words {
            title: code.clone(),
            text: String::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(e: EventRecord) -> NoticeContent {
        match e {
            EventRecord::Notice { content, .. } => content,
            other => panic!("not a notice: {other:?}"),
        }
    }

    #[test]
    fn a_sign_in_notice_reads_in_chinese_and_in_english() {
        let at = Millis(1_700_000_000_000);
        let c = content(sign_in(at));
        let when = at.to_rfc3339();
        assert_eq!(
            words(&c, Lang::Zh),
            Words {
                title: "新设备登录".into(),
                text: format!("有新设备于 {when} 登录了你的账号。"),
            }
        );
        assert_eq!(
            words(&c, Lang::En),
            Words {
                title: "New sign-in".into(),
                text: format!("A new device signed in to your account at {when}."),
            }
        );
    }

    #[test]
    fn a_narrowing_policy_says_so_and_an_ordinary_one_does_not() {
        let plain = words(&content(policy("v2", "2027-01-01", false)), Lang::En);
        let narrow = words(&content(policy("v2", "2027-01-01", true)), Lang::En);
        assert_eq!(plain.title, "Privacy policy v2 from 2027-01-01");
        assert_eq!(narrow.title, plain.title);
        assert!(!plain.text.contains("narrows"), "{}", plain.text);
        assert!(
            narrow.text.contains("narrows your rights"),
            "{}",
            narrow.text
        );
        let zh = words(&content(policy("v2", "2027-01-01", true)), Lang::Zh);
        assert_eq!(zh.title, "隐私政策 v2（2027-01-01 起生效）");
        assert!(zh.text.contains("缩小了你的权利"), "{}", zh.text);
    }

    #[test]
    fn a_request_notice_names_the_request() {
        let w = words(&content(request_answered(42)), Lang::Zh);
        assert_eq!(w.title, "请求 #42 已答复");
        assert!(w.text.contains("#42"));
    }

    #[test]
    fn free_text_is_shown_as_written_in_every_language() {
        let c = NoticeContent::Text {
            title: "Maintenance".into(),
            text: "Tonight at 22:00.".into(),
        };
        for lang in [Lang::Zh, Lang::En] {
            assert_eq!(words(&c, lang).title, "Maintenance");
            assert_eq!(words(&c, lang).text, "Tonight at 22:00.");
        }
    }

    #[test]
    fn an_unknown_code_shows_the_code_instead_of_failing() {
        let c = NoticeContent::Coded {
            code: "future.thing".into(),
            params: vec![("x".into(), "1".into())],
        };
        assert_eq!(render("future.thing", &[], Lang::En), None);
        assert_eq!(
            words(&c, Lang::Zh),
            Words {
                title: "future.thing".into(),
                text: String::new()
            }
        );
    }

    #[test]
    fn a_value_is_never_read_as_a_placeholder_and_a_missing_one_stays() {
        let p = vec![
            ("a".to_string(), "{b}".to_string()),
            ("b".to_string(), "B".to_string()),
        ];
        assert_eq!(fill("x {a} y {b} z {c} {", &p), "x {b} y B z {c} {");
        assert_eq!(fill("no braces", &p), "no braces");
    }

    /// Names of the `{…}` placeholders in `s`.
    fn placeholders(s: &str) -> Vec<&str> {
        let mut out: Vec<&str> = s
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(n, _)| n))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    #[test]
    fn both_languages_use_the_same_parameters_and_the_writers_give_them_all() {
        let written = [
            sign_in(Millis(0)),
            policy("v1", "2026-01-01", false),
            policy("v1", "2026-01-01", true),
            request_answered(1),
        ];
        for (code, zh, en) in &CATALOGUE {
            let mut zh_names = placeholders(zh.title);
            zh_names.extend(placeholders(zh.text));
            zh_names.sort_unstable();
            zh_names.dedup();
            let mut en_names = placeholders(en.title);
            en_names.extend(placeholders(en.text));
            en_names.sort_unstable();
            en_names.dedup();
            assert_eq!(zh_names, en_names, "{code}");
            let Some(NoticeContent::Coded { params, .. }) = written
                .iter()
                .cloned()
                .map(content)
                .find(|c| matches!(c, NoticeContent::Coded { code: c2, .. } if c2 == code))
            else {
                panic!("no writer for {code}");
            };
            let mut given: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
            given.sort_unstable();
            assert_eq!(given, en_names, "{code}");
        }
    }
}
