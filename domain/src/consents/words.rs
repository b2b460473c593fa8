//! What each optional purpose is called and what granting it allows, in Chinese and English:
//! the one text every client shows, in the privacy centre and when a purpose is asked for at
//! the moment of use. Written for this node; each pair says the same thing in both languages.

use super::Purpose;
use crate::policy::Lang;

/// A purpose's name and its one-line description in one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Words {
    pub title: &'static str,
    pub description: &'static str,
}

/// The words for `purpose` in `lang`.
pub const fn words(purpose: Purpose, lang: Lang) -> Words {
    let (zh, en) = pair(purpose);
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

const fn w(title: &'static str, description: &'static str) -> Words {
    Words { title, description }
}

const fn pair(purpose: Purpose) -> (Words, Words) {
    match purpose {
        Purpose::CloudSync => (
            w(
                "云端同步聊天记录",
                "把你的聊天记录加密保存在本节点上，你的每台设备都能看到。",
            ),
            w(
                "Cloud sync of history",
                "Keep your chat history on the node, encrypted, so every device sees it.",
            ),
        ),
        Purpose::ContactsMatching => (
            w(
                "通讯录匹配",
                "用你通讯录里号码的哈希值去匹配本节点的用户，帮你找到好友。",
            ),
            w(
                "Contact matching",
                "Match hashed phone numbers from your contacts to find friends.",
            ),
        ),
        Purpose::PreciseLocation => (
            w(
                "精确位置",
                "使用设备所在的位置，用于“附近的人”和带地点的动态。",
            ),
            w(
                "Precise location",
                "Use your device's location for nearby people and located posts.",
            ),
        ),
        Purpose::Camera => (
            w("相机", "接收你用相机录制的视频。"),
            w("Camera", "Accept video you record with the camera."),
        ),
        Purpose::Microphone => (
            w("麦克风", "接收你录制的语音消息，以及你录制的视频里的声音。"),
            w(
                "Microphone",
                "Accept voice messages you record, and the sound of videos you record.",
            ),
        ),
        Purpose::Photos => (
            w("相册", "接收你从相册里选出的照片。"),
            w("Photos", "Accept photos from your album."),
        ),
        Purpose::RecommendMe => (
            w("为我推荐", "给你看你或许认识的人。"),
            w("Recommendations for me", "Show you people you may know."),
        ),
        Purpose::BeRecommended => (
            w("推荐我给他人", "把你作为或许认识的人展示给别人。"),
            w(
                "Be recommended to others",
                "Show you to others as someone they may know.",
            ),
        ),
        Purpose::Personalisation => (
            w("个性化", "依据你在本节点上的操作，调整你看到的内容。"),
            w(
                "Personalisation",
                "Use your activity on this node to personalise what you see.",
            ),
        ),
        Purpose::CrossBorderTransfer => (
            w("跨境传输", "把你的消息和资料发往其他地区的伙伴节点。"),
            w(
                "Cross-border transfer",
                "Send your messages and profile to partner nodes in other regions.",
            ),
        ),
        Purpose::RealName => (
            w(
                "实名认证",
                "保存你已核验的真实姓名，只用于法律要求实名的功能。",
            ),
            w(
                "Real-name verification",
                "Keep your verified real name for the features the law requires it for.",
            ),
        ),
        Purpose::PublicPage => (
            w(
                "公开主页",
                "发布一个公开主页，任何人都能看到，其他节点上的人也能。",
            ),
            w(
                "Public page",
                "Publish a public page that anyone, also on other nodes, can see.",
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_purpose_has_distinct_words_in_each_language_and_chinese_is_chinese() {
        for lang in Lang::ALL {
            let mut titles: Vec<_> = Purpose::ALL.iter().map(|p| words(*p, lang).title).collect();
            titles.sort_unstable();
            titles.dedup();
            assert_eq!(titles.len(), Purpose::ALL.len(), "{lang:?}: titles repeat");
        }
        for p in Purpose::ALL {
            let (zh, en) = (words(p, Lang::Zh), words(p, Lang::En));
            assert_ne!(zh, en, "{p}");
            for s in [zh.title, zh.description] {
                assert!(
                    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                    "{p}: {s}"
                );
            }
            for s in [en.title, en.description] {
                assert!(s.is_ascii() && !s.trim().is_empty(), "{p}: {s}");
            }
        }
    }
}
