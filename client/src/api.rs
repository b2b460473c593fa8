//! The typed calls of the client API ([`Api`], over any [`Transport`]): requests built from
//! typed arguments, answers checked for the status the API document gives for success and read
//! into typed values. Any other status is a [`ClientError::Status`] carrying the node's error.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::endpoint::Transport;
use crate::error::ClientError;
use crate::reply::Reply;

/// `method path` for `host`, with a bearer `token` if given and a JSON `body` if given.
pub fn request(
    host: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<Request<Full<Bytes>>, ClientError> {
    match body {
        Some(v) => raw_request(
            host,
            method,
            path,
            token,
            Some("application/json"),
            Bytes::from(serde_json::to_vec(v)?),
        ),
        None => raw_request(host, method, path, token, None, Bytes::new()),
    }
}

/// `method path` for `host` with a body of any type.
pub fn raw_request(
    host: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, ClientError> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    Ok(b.body(Full::new(body))?)
}

/// `POST /api/v1/accounts`.
#[derive(Debug, Clone, Serialize)]
pub struct Registration<'a> {
    /// E.164, e.g. `+8613900000001`.
    pub phone: &'a str,
    pub handle: &'a str,
    pub password: &'a str,
    pub nickname: &'a str,
    /// The policy version the user accepts (the node's current one).
    pub accept_policy: &'a str,
}

/// A signed-in device (`POST /api/v1/sessions`).
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    pub device_id: String,
}

/// `POST /api/v1/conversations`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NewConversation<'a> {
    /// The direct conversation with `with` (an address); the existing one if there is one.
    Direct { with: &'a str },
    /// A new group named `name` with `members` (addresses) besides its creator.
    Group {
        name: &'a str,
        members: &'a [String],
    },
}

/// The answer to a message sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// `true` for 202: queued for the node hosting the conversation (federation); `false` for
    /// 201, stored here.
    pub queued: bool,
    /// The answer's body (the message, or what was queued).
    pub body: Value,
}

/// One page of a conversation's history, as served: newest first.
#[derive(Debug, Clone, Deserialize)]
pub struct History {
    pub messages: Vec<Value>,
}

impl History {
    /// The text of each message, oldest first; `None` for one without text (recalled, or not
    /// a text message).
    pub fn texts(&self) -> Vec<Option<String>> {
        self.messages
            .iter()
            .rev()
            .map(|m| m["body"]["text"].as_str().map(str::to_string))
            .collect()
    }
}

/// The typed calls, for any [`Transport`] (a fresh connection per call with
/// [`crate::Endpoint`], one keep-alive connection with [`crate::Connection`]).
pub trait Api: Transport {
    /// `method path` with an optional token and JSON body; the answer whatever its status.
    fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> impl Future<Output = Result<Reply, ClientError>> + Send {
        async move {
            let req = request(self.host(), method, path, token, body)?;
            self.send(req).await
        }
    }

    /// `GET /health`; an error unless 200.
    fn health(&mut self) -> impl Future<Output = Result<(), ClientError>> + Send {
        async move {
            self.call(Method::GET, "/health", None, None)
                .await?
                .expect_status(&[StatusCode::OK])?;
            Ok(())
        }
    }

    /// Registers an account; an error unless 201.
    fn register(
        &mut self,
        form: &Registration<'_>,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        async move {
            let body = serde_json::to_value(form)?;
            self.call(Method::POST, "/api/v1/accounts", None, Some(&body))
                .await?
                .expect_status(&[StatusCode::CREATED])?;
            Ok(())
        }
    }

    /// Signs in with a handle or phone number and a password; an error unless 201.
    fn login(
        &mut self,
        login: &str,
        password: &str,
    ) -> impl Future<Output = Result<Session, ClientError>> + Send {
        async move {
            let body = json!({"login": login, "password": password});
            self.call(Method::POST, "/api/v1/sessions", None, Some(&body))
                .await?
                .expect_status(&[StatusCode::CREATED])?
                .parse()
        }
    }

    /// Grants or revokes `purpose` for the user of `token`; an error unless 200.
    fn set_consent(
        &mut self,
        token: &str,
        purpose: &str,
        granted: bool,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        async move {
            let path = format!("/api/v1/me/consents/{purpose}");
            let body = json!({ "granted": granted });
            self.call(Method::PUT, &path, Some(token), Some(&body))
                .await?
                .expect_status(&[StatusCode::OK])?;
            Ok(())
        }
    }

    /// Creates (or, for a direct one, finds) a conversation; its id.
    fn create_conversation(
        &mut self,
        token: &str,
        new: &NewConversation<'_>,
    ) -> impl Future<Output = Result<String, ClientError>> + Send {
        async move {
            let body = serde_json::to_value(new)?;
            let reply = self
                .call(
                    Method::POST,
                    "/api/v1/conversations",
                    Some(token),
                    Some(&body),
                )
                .await?
                .expect_status(&[StatusCode::OK, StatusCode::CREATED])?;
            let v = reply.json()?;
            v["id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ClientError::Unexpected(format!("a conversation without id: {v}")))
        }
    }

    /// `GET /api/v1/conversations/{id}`; an error unless 200 (not a member, or not yet known
    /// on this node).
    fn conversation(
        &mut self,
        token: &str,
        id: &str,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send {
        async move {
            let path = format!("/api/v1/conversations/{id}");
            self.call(Method::GET, &path, Some(token), None)
                .await?
                .expect_status(&[StatusCode::OK])?
                .json()
        }
    }

    /// Sends a text message with the idempotency key `txn`; 201 (stored) or 202 (queued for
    /// the hosting node), else an error.
    fn send_text(
        &mut self,
        token: &str,
        conv: &str,
        txn: &str,
        text: &str,
    ) -> impl Future<Output = Result<Sent, ClientError>> + Send {
        async move {
            let path = format!("/api/v1/conversations/{conv}/messages");
            let body = json!({"txn_id": txn, "body": {"type": "text", "text": text}});
            let reply = self
                .call(Method::POST, &path, Some(token), Some(&body))
                .await?
                .expect_status(&[StatusCode::CREATED, StatusCode::ACCEPTED])?;
            Ok(Sent {
                queued: reply.status == StatusCode::ACCEPTED,
                body: reply.json()?,
            })
        }
    }

    /// The newest `limit` messages of a conversation as `token`'s user sees them; an error
    /// unless 200.
    fn history(
        &mut self,
        token: &str,
        conv: &str,
        limit: u32,
    ) -> impl Future<Output = Result<History, ClientError>> + Send {
        async move {
            let path = format!("/api/v1/conversations/{conv}/messages?limit={limit}");
            self.call(Method::GET, &path, Some(token), None)
                .await?
                .expect_status(&[StatusCode::OK])?
                .parse()
        }
    }
}

impl<T: Transport + ?Sized> Api for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_carries_host_token_and_json_body() {
        let body = json!({"a": 1});
        let req = request(
            "localhost",
            Method::POST,
            "/api/v1/x",
            Some("tok"),
            Some(&body),
        )
        .expect("request");
        assert_eq!(req.headers()["host"], "localhost");
        assert_eq!(req.headers()["authorization"], "Bearer tok");
        assert_eq!(req.headers()["content-type"], "application/json");
        let bare = request("localhost", Method::GET, "/health", None, None).expect("request");
        assert!(bare.headers().get("authorization").is_none());
        assert!(bare.headers().get("content-type").is_none());
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_an_error_not_a_panic() {
        let e = request("localhost", Method::GET, "/x", Some("bad\ntoken"), None);
        assert!(matches!(e, Err(ClientError::Request(_))), "{e:?}");
    }

    #[test]
    fn new_conversations_are_written_as_the_api_reads_them() {
        let members = vec!["b@localhost".to_string()];
        assert_eq!(
            serde_json::to_value(NewConversation::Group {
                name: "g",
                members: &members
            })
            .expect("json"),
            json!({"kind": "group", "name": "g", "members": ["b@localhost"]})
        );
        assert_eq!(
            serde_json::to_value(NewConversation::Direct {
                with: "b@localhost"
            })
            .expect("json"),
            json!({"kind": "direct", "with": "b@localhost"})
        );
    }

    #[test]
    fn history_texts_are_oldest_first_and_none_without_text() {
        let h: History = serde_json::from_value(json!({"messages": [
            {"body": {"type": "text", "text": "second"}},
            {"body": null},
            {"body": {"type": "text", "text": "first"}},
        ]}))
        .expect("history");
        assert_eq!(
            h.texts(),
            vec![Some("first".to_string()), None, Some("second".to_string())]
        );
    }
}
