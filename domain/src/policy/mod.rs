//! The privacy policy the node serves: its version, effective date and text in Chinese and
//! English. The built-in texts are a template written for this node; `policy.zh_file` and
//! `policy.en_file` replace them. `book.rs` keeps every version published since.

mod book;

pub use book::{MAX_TEXT_BYTES, PolicyBook, PolicyBookError, Publication, Version};

use crate::config::Config;
use crate::time::Date;

const BUILT_IN_ZH: &str = include_str!("zh.md");
const BUILT_IN_EN: &str = include_str!("en.md");

/// A language the policy is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];
    pub const fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
    pub fn parse(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == s)
    }
}

/// The current policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub version: String,
    pub effective: Date,
    zh: String,
    en: String,
}

/// A policy file could not be used; names the config key.
#[derive(Debug, thiserror::Error)]
#[error("config key `{key}`: {path}: {reason}")]
pub struct PolicyError {
    key: &'static str,
    path: String,
    reason: String,
}

impl Policy {
    /// Loads the configured texts (or the built-in ones).
    pub fn load(config: &Config) -> Result<Policy, PolicyError> {
        let read = |key: &'static str, path: &Option<std::path::PathBuf>, built_in: &str| {
            let Some(p) = path else {
                return Ok(built_in.to_string());
            };
            let err = |reason: String| PolicyError {
                key,
                path: p.display().to_string(),
                reason,
            };
            let text = std::fs::read_to_string(p).map_err(|e| err(e.to_string()))?;
            if text.trim().is_empty() {
                return Err(err("the file is empty".into()));
            }
            if text.len() > 512 * 1024 {
                return Err(err("the file is larger than 512 KiB".into()));
            }
            Ok(text)
        };
        Ok(Policy {
            version: config.policy.version.as_str().to_string(),
            effective: config.policy.effective,
            zh: read("policy.zh_file", &config.policy.zh_file.0, BUILT_IN_ZH)?,
            en: read("policy.en_file", &config.policy.en_file.0, BUILT_IN_EN)?,
        })
    }

    pub fn text(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_texts_name_every_right_and_the_necessary_data() {
        let p = Policy::load(&Config::default()).unwrap();
        let en = p.text(Lang::En);
        for needle in [
            "phone number",
            "handle",
            "password",
            "withdraw",
            "delete",
            "18",
            "region",
        ] {
            assert!(en.contains(needle), "en lacks {needle}");
        }
        let zh = p.text(Lang::Zh);
        for needle in ["手机号码", "账号名", "密码", "撤回", "注销", "18", "跨境"] {
            assert!(zh.contains(needle), "zh lacks {needle}");
        }
    }

    #[test]
    fn configured_file_replaces_the_text_and_a_missing_one_names_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("en.md");
        std::fs::write(&f, "Our own policy").unwrap();
        let mut c = Config::default();
        c.policy.en_file.0 = Some(f);
        assert_eq!(Policy::load(&c).unwrap().text(Lang::En), "Our own policy");
        c.policy.zh_file.0 = Some(dir.path().join("missing.md"));
        let e = Policy::load(&c).unwrap_err().to_string();
        assert!(e.contains("policy.zh_file"), "{e}");
    }
}
