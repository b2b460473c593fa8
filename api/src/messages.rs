//! Messages in a conversation, and the JSON shape of messages and events shared with the
//! event stream.
//!
//! - `POST /api/v1/conversations/{id}/messages` — send (idempotent per device and `txn_id` for
//!   `retention.txn_ids_days`, one day by default).
//! - `GET /api/v1/conversations/{id}/messages?before=&after=&limit=` — a page of history.
//! - `DELETE /api/v1/conversations/{id}/messages` — delete all of it from my view.
//! - `DELETE /api/v1/conversations/{id}/messages/{seq}` — delete one from my view.
//! - `POST /api/v1/conversations/{id}/messages/{seq}/recall` — recall for everyone (author, in time).

use http::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::body::Incoming;
use super::conversations::role_name;
use super::error::ApiError;
use super::json::{Body, no_content, read_json, reply};
use super::query::{Params, Whole, read};
use domain::accounts::Session;
use domain::messaging::{self, Event, MediaKind, MessageView, Messaging, SendOutcome};
use domain::policy::Lang;
use storage::{MemberAction, NoticeContent};

/// A message body on the wire: `{"type":"text","text"}` or `{"type":<media kind>,"media_id"[,"name"]}`.
#[derive(Serialize)]
#[serde(untagged)]
enum BodyWire<'a> {
    Text {
        #[serde(rename = "type")]
        kind: &'static str,
        text: &'a str,
    },
    Media {
        #[serde(rename = "type")]
        kind: &'static str,
        media_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
    },
}

impl<'a> From<&'a messaging::Body> for BodyWire<'a> {
    fn from(b: &'a messaging::Body) -> Self {
        match b {
            messaging::Body::Text(text) => BodyWire::Text { kind: "text", text },
            messaging::Body::Media {
                kind,
                media_id,
                name,
            } => BodyWire::Media {
                kind: kind.name(),
                media_id,
                name: name.as_deref(),
            },
        }
    }
}

/// A message on the wire: a recalled one has `"recalled": true` and a null body. Serialised
/// straight from the view, without building a `Value` first.
#[derive(Serialize)]
pub struct MessageWire<'a> {
    id: &'a str,
    seq: u64,
    ts: u64,
    sender: &'a str,
    recalled: bool,
    body: Option<BodyWire<'a>>,
}

/// The wire shape of `m`.
pub fn message_json(m: &MessageView) -> MessageWire<'_> {
    MessageWire {
        id: &m.id,
        seq: m.seq,
        ts: m.ts.0,
        sender: &m.sender,
        recalled: m.body.is_none(),
        body: m.body.as_ref().map(BodyWire::from),
    }
}

fn action_name(a: MemberAction) -> &'static str {
    match a {
        MemberAction::Joined => "joined",
        MemberAction::Invited => "invited",
        MemberAction::Left => "left",
        MemberAction::Removed => "removed",
        MemberAction::RoleChanged => "role_changed",
    }
}

/// An event on the wire: `{"type":…,"cursor":"N",…}`.
#[derive(Serialize)]
pub struct EventWire<'a> {
    cursor: String,
    #[serde(flatten)]
    event: EventKind<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EventKind<'a> {
    Message {
        conversation: &'a str,
        message: MessageWire<'a>,
    },
    Recall {
        conversation: &'a str,
        seq: u64,
    },
    Membership {
        conversation: &'a str,
        action: &'static str,
        user: &'a str,
        actor: &'a str,
        role: &'static str,
    },
    Renamed {
        conversation: &'a str,
        name: &'a str,
        actor: &'a str,
    },
    Visibility {
        conversation: &'a str,
        public: bool,
        actor: &'a str,
    },
    Notice(NoticeWire<'a>),
    Friend {
        action: &'static str,
        id: &'a str,
        user: &'a str,
    },
    Community {
        community: &'a str,
        post: u64,
        comment: Option<u64>,
    },
}

/// A notice on the wire: `{"kind","code","params","title","text"}`. `code` (null for an
/// operator's free text) and `params` are what a client puts into its own words; `title` and
/// `text` are the node's words in the reader's language, for clients that do not know the code.
#[derive(Serialize)]
pub struct NoticeWire<'a> {
    kind: &'static str,
    code: Option<&'a str>,
    params: ParamsWire<'a>,
    title: String,
    text: String,
}

/// A coded notice's parameters as one JSON object, in their order.
struct ParamsWire<'a>(&'a [(String, String)]);

impl Serialize for ParamsWire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The wire shape of a notice of `kind` saying `content`, worded in `lang`.
pub fn notice_json<'a>(
    kind: &'static str,
    content: &'a NoticeContent,
    lang: Lang,
) -> NoticeWire<'a> {
    let words = domain::notices::words(content, lang);
    let (code, params): (_, &[(String, String)]) = match content {
        NoticeContent::Coded { code, params } => (Some(code.as_str()), params),
        NoticeContent::Text { .. } => (None, &[]),
    };
    NoticeWire {
        kind,
        code,
        params: ParamsWire(params),
        title: words.title,
        text: words.text,
    }
}

/// The wire shape of event `e` at `cursor`; a notice's words are in `lang`.
pub fn event_json(cursor: u64, e: &Event, lang: Lang) -> EventWire<'_> {
    let event = match e {
        Event::Message {
            conversation,
            message,
        } => EventKind::Message {
            conversation,
            message: message_json(message),
        },
        Event::Recall { conversation, seq } => EventKind::Recall {
            conversation,
            seq: *seq,
        },
        Event::Membership {
            conversation,
            action,
            user,
            actor,
            role,
        } => EventKind::Membership {
            conversation,
            action: action_name(*action),
            user,
            actor,
            role: role_name(*role),
        },
        Event::Renamed {
            conversation,
            name,
            actor,
        } => EventKind::Renamed {
            conversation,
            name,
            actor,
        },
        Event::Visibility {
            conversation,
            public,
            actor,
        } => EventKind::Visibility {
            conversation,
            public: *public,
            actor,
        },
        Event::Notice { kind, content } => EventKind::Notice(notice_json(kind, content, lang)),
        Event::Friend { action, id, user } => EventKind::Friend { action, id, user },
        Event::Community {
            community,
            post,
            comment,
        } => EventKind::Community {
            community,
            post: *post,
            comment: *comment,
        },
    };
    EventWire {
        cursor: cursor.to_string(),
        event,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    txn_id: String,
    body: WireBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBody {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    media_id: Option<String>,
    name: Option<String>,
}

fn parse_body(b: WireBody) -> Result<messaging::Body, ApiError> {
    if b.kind == "text" {
        if b.media_id.is_some() || b.name.is_some() {
            return Err(ApiError::invalid("body", "a text body has only `text`"));
        }
        let text = b
            .text
            .ok_or_else(|| ApiError::invalid("body.text", "is required"))?;
        return Ok(messaging::Body::Text(text));
    }
    let kind = MediaKind::parse(&b.kind).ok_or_else(|| {
        ApiError::invalid("body.type", "must be text, image, voice, video or file")
    })?;
    if b.text.is_some() {
        return Err(ApiError::invalid("body.text", "is only for text bodies"));
    }
    let media_id = b
        .media_id
        .ok_or_else(|| ApiError::invalid("body.media_id", "is required (POST /api/v1/media)"))?;
    if media_id.is_empty() || media_id.len() > 64 {
        return Err(ApiError::invalid("body.media_id", "is not a media id"));
    }
    let name = b
        .name
        .map(|n| {
            domain::profile::text("body.name", &n, 1, 255)
                .map_err(|e| ApiError::invalid(&e.field, &e.reason))
        })
        .transpose()?;
    if name.is_some() && kind != MediaKind::File {
        return Err(ApiError::invalid("body.name", "is only for files"));
    }
    Ok(messaging::Body::Media {
        kind,
        media_id,
        name,
    })
}

/// `POST /api/v1/conversations/{id}/messages` `{"txn_id","body":{"type":"text","text"} |
/// {"type":"image"|"voice"|"video"|"file","media_id","name"?}}` → 201 `{"id","seq","ts"}` once
/// durably stored; the same `txn_id` from the same device → the same answer, stored once.
/// Image, voice and video need the photos, microphone and camera purposes (403 otherwise).
/// In a conversation another node hosts, the message is durably queued for that node and the
/// answer is 202 `{"pending":true,"ts"}`: it arrives, with its seq, as an event once the host
/// has ordered it. 451 when the message would reach a peer in another region without the
/// sender's `cross_border_transfer` consent (nothing stored or queued).
pub async fn send(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    req: Request<Incoming>,
    limit: usize,
) -> Result<Response<Body>, ApiError> {
    let b: SendBody = read_json(req, limit).await?;
    let body = parse_body(b.body)?;
    match messaging.send(session, id, &b.txn_id, body).await? {
        SendOutcome::Stored { id, seq, ts } => Ok(reply(
            StatusCode::CREATED,
            &json!({"id": id, "seq": seq, "ts": ts.0}),
        )),
        SendOutcome::Forwarded { ts } => Ok(reply(
            StatusCode::ACCEPTED,
            &json!({"pending": true, "ts": ts.0}),
        )),
    }
}

/// The query of a conversation's history.
#[derive(Debug, serde::Deserialize)]
pub struct HistoryQuery {
    before: Option<Whole>,
    after: Option<Whole>,
    limit: Option<Whole<1, 200>>,
}

impl Params for HistoryQuery {
    fn expects(name: &str) -> &'static str {
        match name {
            "limit" => "must be 1 to 200",
            _ => "must be a whole number",
        }
    }
}

/// `GET /api/v1/conversations/{id}/messages?before=SEQ&after=SEQ&limit=N` → 200
/// `{"messages":[…]}`: newest first (before `before` if given), or with `after` oldest first.
/// `limit` 1–200, default 50.
pub async fn list(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    query: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let q: HistoryQuery = read(query)?;
    let (before, after) = (q.before.map(|w| w.0), q.after.map(|w| w.0));
    let limit = q.limit.map_or(50, |w| w.0);
    if before.is_some() && after.is_some() {
        return Err(ApiError::invalid(
            "before",
            "give before or after, not both",
        ));
    }
    let page = messaging
        .history(session, id, before, after, limit as usize)
        .await?;
    #[derive(Serialize)]
    struct Page<'a> {
        messages: Vec<MessageWire<'a>>,
    }
    Ok(reply(
        StatusCode::OK,
        &Page {
            messages: page.iter().map(message_json).collect(),
        },
    ))
}

/// `DELETE /api/v1/conversations/{id}/messages` → 204: every message so far leaves my view.
pub async fn clear(
    messaging: &Messaging,
    session: &Session,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    messaging.clear(session.user, id).await?;
    Ok(no_content())
}

fn seq(s: &str) -> Result<u64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::not_found("no such message"))
}

/// `DELETE /api/v1/conversations/{id}/messages/{seq}` → 204: the message leaves my view.
pub async fn hide(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    s: &str,
) -> Result<Response<Body>, ApiError> {
    messaging.hide(session.user, id, seq(s)?).await?;
    Ok(no_content())
}

/// `POST /api/v1/conversations/{id}/messages/{seq}/recall` → 204: a tombstone for everyone;
/// 403 if not the author or the recall window has passed.
pub async fn recall(
    messaging: &Messaging,
    session: &Session,
    id: &str,
    s: &str,
) -> Result<Response<Body>, ApiError> {
    messaging.recall(session.user, id, seq(s)?).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::time::Millis;
    use storage::Role;

    fn view(body: Option<messaging::Body>) -> MessageView {
        MessageView {
            id: "m1".into(),
            seq: 7,
            ts: Millis(1_700_000_000_000),
            sender: "ann@example.org".into(),
            body,
        }
    }

    fn wire(cursor: u64, e: &Event) -> serde_json::Value {
        serde_json::to_value(event_json(cursor, e, Lang::Zh)).unwrap()
    }

    #[test]
    fn events_keep_their_documented_json_shape() {
        let text = Event::Message {
            conversation: "c1:example.org".into(),
            message: view(Some(messaging::Body::Text("hi".into()))),
        };
        assert_eq!(
            wire(42, &text),
            json!({"type": "message", "cursor": "42", "conversation": "c1:example.org",
                   "message": {"id": "m1", "seq": 7, "ts": 1_700_000_000_000u64,
                               "sender": "ann@example.org", "recalled": false,
                               "body": {"type": "text", "text": "hi"}}})
        );
        let named = view(Some(messaging::Body::Media {
            kind: MediaKind::Image,
            media_id: "x1".into(),
            name: Some("a.png".into()),
        }));
        assert_eq!(
            serde_json::to_value(message_json(&named)).unwrap()["body"],
            json!({"type": "image", "media_id": "x1", "name": "a.png"})
        );
        let unnamed = view(Some(messaging::Body::Media {
            kind: MediaKind::File,
            media_id: "x2".into(),
            name: None,
        }));
        assert_eq!(
            serde_json::to_value(message_json(&unnamed)).unwrap()["body"],
            json!({"type": "file", "media_id": "x2"})
        );
        let recalled = serde_json::to_value(message_json(&view(None))).unwrap();
        assert_eq!(
            (recalled["recalled"].clone(), recalled["body"].clone()),
            (json!(true), json!(null))
        );
        let joined = Event::Membership {
            conversation: "c1:example.org".into(),
            action: MemberAction::Joined,
            user: "bo@example.org".into(),
            actor: "ann@example.org".into(),
            role: Role::Member,
        };
        assert_eq!(
            wire(3, &joined),
            json!({"type": "membership", "cursor": "3", "conversation": "c1:example.org",
                   "action": "joined", "user": "bo@example.org", "actor": "ann@example.org",
                   "role": "member"})
        );
        let notice = Event::Notice {
            kind: "incident",
            content: NoticeContent::Text {
                title: "t".into(),
                text: "x".into(),
            },
        };
        assert_eq!(
            wire(4, &notice),
            json!({"type": "notice", "cursor": "4", "kind": "incident", "code": null,
                   "params": {}, "title": "t", "text": "x"})
        );
        let coded = Event::Notice {
            kind: "request",
            content: NoticeContent::Coded {
                code: "request.answered".into(),
                params: vec![("request".into(), "9".into())],
            },
        };
        assert_eq!(
            serde_json::to_value(event_json(6, &coded, Lang::En)).unwrap(),
            json!({"type": "notice", "cursor": "6", "kind": "request", "code": "request.answered",
                   "params": {"request": "9"}, "title": "Request #9 answered",
                   "text": "Your request #9 has been answered: GET /api/v1/me/requests shows the answer."})
        );
        assert_eq!(
            serde_json::to_value(event_json(6, &coded, Lang::Zh)).unwrap()["title"],
            "请求 #9 已答复"
        );
        let recall = Event::Recall {
            conversation: "c1:example.org".into(),
            seq: 7,
        };
        assert_eq!(
            wire(5, &recall),
            json!({"type": "recall", "cursor": "5", "conversation": "c1:example.org", "seq": 7})
        );
    }
}
