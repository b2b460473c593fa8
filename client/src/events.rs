//! The event WebSocket (`GET /api/v1/events`): opening it with a bearer token or with the auth
//! frame, acknowledging cursors, reading text frames, and [`Frame`], the typed view of an
//! event that borrows from the frame's text.

use std::borrow::Cow;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::endpoint::Endpoint;
use crate::error::ClientError;

/// An open event WebSocket.
pub type EventStream = tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>;

/// What a reader of an event frame needs of it; the rest of the frame is skipped, not built.
#[derive(Debug, Deserialize)]
pub struct Frame<'a> {
    /// `message`, `recall`, `membership`, `notice`, …
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// The position to acknowledge or resume from.
    #[serde(borrow)]
    pub cursor: Cow<'a, str>,
    /// The message of a `message` event.
    #[serde(borrow)]
    pub message: Option<FrameMessage<'a>>,
}

/// The message of a `message` event frame.
#[derive(Debug, Deserialize)]
pub struct FrameMessage<'a> {
    /// The sender's address (`handle@domain`).
    #[serde(borrow)]
    pub sender: Cow<'a, str>,
    #[serde(borrow)]
    pub body: Option<FrameBody<'a>>,
}

/// The body of a message in an event frame (`text` for a text message).
#[derive(Debug, Deserialize)]
pub struct FrameBody<'a> {
    #[serde(borrow)]
    pub text: Option<Cow<'a, str>>,
}

impl<'a> Frame<'a> {
    /// Reads the event frame `text`.
    pub fn parse(text: &'a str) -> Result<Frame<'a>, ClientError> {
        Ok(serde_json::from_str(text)?)
    }
}

impl Endpoint {
    /// Opens the event WebSocket, authenticated by `token` in the `Authorization` header, or
    /// (with `None`) not yet authenticated: then [`authenticate`] must follow. With `since`, the
    /// stream resumes after that cursor.
    pub async fn events(
        &self,
        token: Option<&str>,
        since: Option<&str>,
    ) -> Result<EventStream, ClientError> {
        let url = match since {
            Some(s) => format!("wss://{}/api/v1/events?since={s}", self.host()),
            None => format!("wss://{}/api/v1/events", self.host()),
        };
        let mut req = url.into_client_request()?;
        if let Some(t) = token {
            let value = format!("Bearer {t}")
                .parse()
                .map_err(|_| ClientError::Unexpected("a token that is not a header".into()))?;
            req.headers_mut().insert("authorization", value);
        }
        let tls = self.connect_tls().await?;
        let (ws, _) = tokio_tungstenite::client_async(req, tls).await?;
        Ok(ws)
    }
}

/// Authenticates a stream opened without a token, with the first frame
/// `{"type":"auth","token":…}` (for clients that cannot set headers).
pub async fn authenticate(ws: &mut EventStream, token: &str) -> Result<(), ClientError> {
    let frame = json!({"type": "auth", "token": token}).to_string();
    Ok(ws.send(Message::Text(frame.into())).await?)
}

/// Acknowledges every event up to `cursor` for this device.
pub async fn ack(ws: &mut EventStream, cursor: &str) -> Result<(), ClientError> {
    let frame = json!({"type": "ack", "cursor": cursor}).to_string();
    Ok(ws.send(Message::Text(frame.into())).await?)
}

/// The next text frame (one event), pings and pongs skipped; [`ClientError::Closed`] when the
/// node closed the stream.
pub async fn next_text(ws: &mut EventStream) -> Result<Utf8Bytes, ClientError> {
    loop {
        match ws.next().await {
            None => return Err(ClientError::Closed(None)),
            Some(Ok(Message::Close(c))) => {
                return Err(ClientError::Closed(
                    c.map(|c| (u16::from(c.code), c.reason.as_str().to_string())),
                ));
            }
            Some(Ok(Message::Text(t))) => return Ok(t),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_frame_gives_its_sender_text_and_cursor() {
        let text = r#"{"type":"message","cursor":"42","message":{"sender":"a@localhost",
            "body":{"type":"text","text":"hi"},"conversation":"c1"}}"#;
        let f = Frame::parse(text).expect("frame");
        assert_eq!(f.kind, "message");
        assert_eq!(f.cursor, "42");
        let m = f.message.expect("message");
        assert_eq!(m.sender, "a@localhost");
        assert_eq!(m.body.and_then(|b| b.text).as_deref(), Some("hi"));
    }

    #[test]
    fn a_frame_without_a_cursor_is_an_error() {
        assert!(Frame::parse(r#"{"type":"notice"}"#).is_err());
    }
}
