//! A user's profile: the nickname and avatar everyone in a conversation sees, and the optional
//! fields (gender, birthday, region, education, bio), each with its own visibility. Validation
//! of every field, the view a given viewer is allowed, and the byte encoding that `accounts`
//! seals under the user's data key. An avatar is an uploaded image (a media id, issue 25);
//! the free-form reference strings stored before stay readable as they are.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::time::{Date, Millis};
use storage::{Dec, Enc, StoreError};

/// Who may see an optional field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Friends,
    Private,
}

impl Visibility {
    pub const fn name(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Friends => "friends",
            Visibility::Private => "private",
        }
    }
    fn code(self) -> u64 {
        match self {
            Visibility::Public => 0,
            Visibility::Friends => 1,
            Visibility::Private => 2,
        }
    }
    fn from_code(c: u64) -> Option<Self> {
        [Visibility::Public, Visibility::Friends, Visibility::Private]
            .get(c as usize)
            .copied()
    }
}

impl FromStr for Visibility {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, ProfileError> {
        match s {
            "public" => Ok(Visibility::Public),
            "friends" => Ok(Visibility::Friends),
            "private" => Ok(Visibility::Private),
            _ => Err(ProfileError::new(
                "visibility",
                "must be public, friends or private",
            )),
        }
    }
}

/// The optional profile fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Gender,
    Birthday,
    Region,
    Education,
    Bio,
}

impl Field {
    pub const ALL: [Field; 5] = [
        Field::Gender,
        Field::Birthday,
        Field::Region,
        Field::Education,
        Field::Bio,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Field::Gender => "gender",
            Field::Birthday => "birthday",
            Field::Region => "region",
            Field::Education => "education",
            Field::Bio => "bio",
        }
    }

    const fn max_chars(self) -> usize {
        match self {
            Field::Gender => 32,
            Field::Birthday => 10,
            Field::Region => 64,
            Field::Education => 128,
            Field::Bio => 500,
        }
    }

    fn code(self) -> u64 {
        Field::ALL.iter().position(|f| *f == self).unwrap_or(0) as u64
    }

    /// Checks and normalises a value for this field. `today` bounds birthdays.
    pub fn validate(self, value: &str, today: Millis) -> Result<String, ProfileError> {
        if self == Field::Birthday {
            let d = crate::time::parse_date(value)
                .ok_or_else(|| ProfileError::new("birthday", "must be a date YYYY-MM-DD"))?;
            let earliest = Date {
                year: 1900,
                month: 1,
                day: 1,
            };
            if d < earliest || d > Date::of(today) {
                return Err(ProfileError::new(
                    "birthday",
                    "must be between 1900-01-01 and today",
                ));
            }
            return Ok(d.to_string());
        }
        text(self.name(), value, 1, self.max_chars())
    }
}

impl FromStr for Field {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Field::ALL.into_iter().find(|f| f.name() == s).ok_or(())
    }
}

/// A field value refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ProfileError {
    pub field: String,
    pub reason: String,
}

impl ProfileError {
    pub fn new(field: &str, reason: &str) -> Self {
        ProfileError {
            field: field.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Checks free text others will see (`crate::shown::text`): trimmed, NFC, `min..=max`
/// characters, nothing that hides or reorders what is shown.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<String, ProfileError> {
    crate::shown::text(field, value, min, max).map_err(|e| ProfileError {
        field: e.field,
        reason: e.reason,
    })
}

/// Checks a nickname (1–32 characters).
pub fn nickname(value: &str) -> Result<String, ProfileError> {
    text("nickname", value, 1, 32)
}

/// Checks the form of an avatar given by a client: the id of an uploaded image (whether it is
/// the user's own image is checked against the store, `Directory::check_avatar`).
pub fn avatar(value: &str) -> Result<Avatar, ProfileError> {
    if federation::valid_media_id(value) {
        Ok(Avatar::Media(value.to_string()))
    } else {
        Err(ProfileError::new(
            "avatar",
            "must be the media_id of an image you uploaded (POST /api/v1/media)",
        ))
    }
}

/// What a profile shows as its picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Avatar {
    /// An uploaded image, by media id: served by `GET /api/v1/media/{id}` to whoever may see
    /// the profile, and fetched by the peers that hold the user.
    Media(String),
    /// A free-form reference stored before avatars were media; shown as it is, never fetched.
    Legacy(String),
}

impl Avatar {
    /// What clients are given: the media id, or the old reference.
    pub fn shown(&self) -> &str {
        match self {
            Avatar::Media(s) | Avatar::Legacy(s) => s,
        }
    }

    /// The media id, for an uploaded image.
    pub fn media(&self) -> Option<&str> {
        match self {
            Avatar::Media(s) => Some(s),
            Avatar::Legacy(_) => None,
        }
    }
}

/// A full profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub nickname: String,
    pub avatar: Option<Avatar>,
    pub fields: BTreeMap<Field, (String, Visibility)>,
}

/// How the viewer relates to the profile's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Owner,
    /// A friend (`storage/friends.rs`): sees "friends" fields.
    Friend,
    Other,
}

/// A change to one optional field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldChange {
    /// Set the value and/or the visibility (at least one is given).
    Set {
        value: Option<String>,
        visibility: Option<Visibility>,
    },
    Clear,
}

/// A validated change to a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfilePatch {
    pub nickname: Option<String>,
    /// `Some(None)` removes the avatar.
    pub avatar: Option<Option<Avatar>>,
    pub fields: Vec<(Field, FieldChange)>,
}

impl Profile {
    pub fn new(nickname: String) -> Self {
        Profile {
            nickname,
            avatar: None,
            fields: BTreeMap::new(),
        }
    }

    /// The optional fields this viewer may see. Nickname and avatar are always visible to
    /// anyone who can address the user.
    pub fn visible_fields(&self, viewer: Viewer) -> Vec<(Field, &str)> {
        self.fields
            .iter()
            .filter(|(_, (_, vis))| match viewer {
                Viewer::Owner => true,
                Viewer::Friend => *vis != Visibility::Private,
                Viewer::Other => *vis == Visibility::Public,
            })
            .map(|(f, (v, _))| (*f, v.as_str()))
            .collect()
    }

    /// Applies a patch. New fields without a visibility are private (privacy by default);
    /// changing only the visibility of an unset field is refused.
    pub fn apply(&mut self, patch: ProfilePatch) -> Result<(), ProfileError> {
        let mut next = self.clone();
        if let Some(n) = patch.nickname {
            next.nickname = n;
        }
        if let Some(a) = patch.avatar {
            next.avatar = a;
        }
        for (field, change) in patch.fields {
            match change {
                FieldChange::Clear => {
                    next.fields.remove(&field);
                }
                FieldChange::Set { value, visibility } => {
                    let existing = next.fields.get(&field).cloned();
                    let value = match (value, existing.as_ref()) {
                        (Some(v), _) => v,
                        (None, Some((v, _))) => v.clone(),
                        (None, None) => {
                            return Err(ProfileError::new(
                                field.name(),
                                "has no value yet; give a value with its visibility",
                            ));
                        }
                    };
                    let vis = visibility
                        .or(existing.map(|(_, v)| v))
                        .unwrap_or(Visibility::Private);
                    next.fields.insert(field, (value, vis));
                }
            }
        }
        *self = next;
        Ok(())
    }

    /// The plaintext that is sealed for storage (version 2: the avatar's kind, 0 none,
    /// 1 old reference, 2 media id, before it; version 1 had a flag and only references).
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::new(2).str(&self.nickname);
        e = match &self.avatar {
            None => e.u64(0),
            Some(Avatar::Legacy(a)) => e.u64(1).str(a),
            Some(Avatar::Media(a)) => e.u64(2).str(a),
        };
        e = e.u64(self.fields.len() as u64);
        for (f, (v, vis)) in &self.fields {
            e = e.u64(f.code()).str(v).u64(vis.code());
        }
        e.finish()
    }

    pub fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let v1 = b.first() == Some(&1);
        let mut d = Dec::new(b, "profile", if v1 { 1 } else { 2 })?;
        let nickname = d.string()?;
        let avatar = if v1 {
            // Stored before avatars were media: the reference as it was given.
            d.bool()?
                .then(|| d.string().map(Avatar::Legacy))
                .transpose()?
        } else {
            match d.u64()? {
                0 => None,
                1 => Some(Avatar::Legacy(d.string()?)),
                2 => Some(Avatar::Media(d.string()?)),
                _ => return Err(StoreError::Corrupt("profile")),
            }
        };
        let n = d.u64()?;
        let mut fields = BTreeMap::new();
        for _ in 0..n.min(Field::ALL.len() as u64) {
            let f = *Field::ALL
                .get(d.u64()? as usize)
                .ok_or(StoreError::Corrupt("profile"))?;
            let v = d.string()?;
            let vis = Visibility::from_code(d.u64()?).ok_or(StoreError::Corrupt("profile"))?;
            fields.insert(f, (v, vis));
        }
        d.end()?;
        Ok(Profile {
            nickname,
            avatar,
            fields,
        })
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Millis {
        Date {
            year: 2026,
            month: 11,
            day: 29,
        }
        .start_millis()
    }

    #[test]
    fn new_fields_default_to_private_and_visibility_filters_viewers() {
        let mut p = Profile::new("Li".into());
        p.apply(ProfilePatch {
            fields: vec![
                (
                    Field::Bio,
                    FieldChange::Set {
                        value: Some("hello".into()),
                        visibility: None,
                    },
                ),
                (
                    Field::Region,
                    FieldChange::Set {
                        value: Some("Hangzhou".into()),
                        visibility: Some(Visibility::Public),
                    },
                ),
                (
                    Field::Education,
                    FieldChange::Set {
                        value: Some("ZJU".into()),
                        visibility: Some(Visibility::Friends),
                    },
                ),
            ],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.fields[&Field::Bio].1, Visibility::Private);
        let other: Vec<_> = p
            .visible_fields(Viewer::Other)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(other, vec![Field::Region]);
        let friend: Vec<_> = p
            .visible_fields(Viewer::Friend)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(friend, vec![Field::Region, Field::Education]);
        assert_eq!(p.visible_fields(Viewer::Owner).len(), 3);
    }

    #[test]
    fn visibility_only_change_needs_an_existing_value_and_failed_patch_changes_nothing() {
        let mut p = Profile::new("Li".into());
        let before = p.clone();
        let e = p
            .apply(ProfilePatch {
                nickname: Some("Wang".into()),
                fields: vec![(
                    Field::Gender,
                    FieldChange::Set {
                        value: None,
                        visibility: Some(Visibility::Public),
                    },
                )],
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.field, "gender");
        assert_eq!(p, before);
    }

    #[test]
    fn field_validation() {
        assert!(Field::Birthday.validate("2000-02-29", today()).is_ok());
        assert!(Field::Birthday.validate("2030-01-01", today()).is_err());
        assert!(Field::Birthday.validate("1899-12-31", today()).is_err());
        assert!(Field::Bio.validate(&"字".repeat(500), today()).is_ok());
        assert!(Field::Bio.validate(&"字".repeat(501), today()).is_err());
        assert!(Field::Gender.validate("a\u{0007}b", today()).is_err());
        assert!(nickname("  ").is_err());
        assert_eq!(nickname(" 小李 ").unwrap(), "小李");
    }

    #[test]
    fn encoding_round_trips() {
        let mut p = Profile::new("Li".into());
        for a in [
            None,
            Some(Avatar::Media("abc".into())),
            Some(Avatar::Legacy("https://x.example/a.png".into())),
        ] {
            p.avatar = a;
            p.fields
                .insert(Field::Birthday, ("2000-01-01".into(), Visibility::Friends));
            assert_eq!(Profile::decode(&p.encode()).unwrap(), p);
        }
    }

    #[test]
    fn a_profile_stored_before_avatars_were_media_keeps_its_reference() {
        let old = Enc::new(1)
            .str("Li")
            .bool(true)
            .str("media:x")
            .u64(0)
            .finish();
        let p = Profile::decode(&old).unwrap();
        assert_eq!(p.avatar, Some(Avatar::Legacy("media:x".into())));
        let none = Enc::new(1).str("Li").bool(false).u64(0).finish();
        assert_eq!(Profile::decode(&none).unwrap().avatar, None);
    }

    #[test]
    fn a_new_avatar_must_be_a_media_id() {
        assert_eq!(avatar("AbC_-9").unwrap(), Avatar::Media("AbC_-9".into()));
        assert!(avatar("https://example.invalid/a.png").is_err());
        assert!(avatar("").is_err());
    }
}
