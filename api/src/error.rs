//! The client API's error shape, `{"error":{"code","message"}}` with a fitting status, and the
//! mapping from each domain error to it. Internal causes are logged (without personal data)
//! and answered with a generic 500.

use http::StatusCode;

use domain::accounts::AccountError;
use domain::consents::ConsentError;
use domain::federate::{FedError, PeerError, refusal_text};
use domain::messaging::MessagingError;
use domain::policy::PolicyBookError;
use storage::Refusal;
use storage::{Conflict, StoreError};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn invalid(field: &str, reason: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{field}: {reason}"),
        )
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete the request",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(c) => conflict(c),
            other => {
                tracing::error!(error = %other, "storage failure");
                ApiError::internal()
            }
        }
    }
}

fn conflict(c: Conflict) -> ApiError {
    let (code, what) = match c {
        Conflict::Handle => ("handle_taken", "handle"),
        Conflict::Phone => ("phone_taken", "phone number"),
        Conflict::UserId => ("conflict", "account"),
    };
    ApiError::new(
        StatusCode::CONFLICT,
        code,
        format!("this {what} is already registered"),
    )
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid { field, reason } => ApiError::invalid(field, &reason),
            AccountError::Profile(p) => ApiError::invalid(&p.field, &p.reason),
            AccountError::Taken(c) => conflict(c),
            AccountError::PolicyNotAccepted { current } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "policy_not_accepted",
                format!(
                    "accept_policy must be the current policy version \"{current}\" (GET /api/v1/policy)"
                ),
            ),
            AccountError::BadCredentials => {
                ApiError::unauthorized("bad_credentials", "login or password is incorrect")
            }
            AccountError::Locked(l) => ApiError {
                retry_after: Some(l.retry_after_secs),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    format!(
                        "too many failed logins; try again in {} seconds",
                        l.retry_after_secs
                    ),
                )
            },
            AccountError::Unauthorized => ApiError::unauthorized(
                "invalid_token",
                "the access token is invalid or has been revoked; log in again",
            ),
            AccountError::NoSuchUser => ApiError::not_found("no such user"),
            AccountError::NoSuchDevice => ApiError::not_found("no such device"),
            AccountError::Store(s) => s.into(),
            AccountError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            ),
            AccountError::Busy(secs) => ApiError {
                retry_after: Some(secs),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    format!("the server is busy checking passwords; try again in {secs} seconds"),
                )
            },
            other => {
                tracing::error!(error = %other, "account operation failed");
                ApiError::internal()
            }
        }
    }
}

impl From<ConsentError> for ApiError {
    fn from(e: ConsentError) -> Self {
        match e {
            ConsentError::NotGranted(p) => ApiError::new(
                StatusCode::FORBIDDEN,
                "consent_required",
                format!(
                    "this needs your consent to the `{p}` purpose (PUT /api/v1/me/consents/{p})"
                ),
            ),
            ConsentError::Paused(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                "policy_acceptance_required",
                e.to_string(),
            ),
            ConsentError::GuardianRequired(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                "guardian_consent_required",
                e.to_string(),
            ),
            ConsentError::Store(s) => s.into(),
        }
    }
}

impl From<MessagingError> for ApiError {
    fn from(e: MessagingError) -> Self {
        match e {
            MessagingError::NotFound => ApiError::not_found("no such conversation"),
            MessagingError::NoSuchMessage => ApiError::not_found("no such message"),
            MessagingError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
            MessagingError::Invalid { field, reason } => ApiError::invalid(field, &reason),
            MessagingError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            MessagingError::TooLate(secs) => ApiError::new(
                StatusCode::FORBIDDEN,
                "recall_window_passed",
                format!("a message can be recalled only within {secs} seconds of sending"),
            ),
            MessagingError::Consent(c) => c.into(),
            MessagingError::Store(s) => s.into(),
            MessagingError::Refused(r) => r.into(),
            MessagingError::Federation(f) => f.into(),
            MessagingError::NotAccepting => ApiError::new(
                StatusCode::FORBIDDEN,
                "not_accepting_messages",
                "this user does not accept direct messages from you",
            ),
            other => {
                tracing::error!(error = %other, "messaging operation failed");
                ApiError::internal()
            }
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let text = refusal_text(&r);
        match r {
            Refusal::Residency { .. } => {
                ApiError::new(StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS, "residency", text)
            }
            Refusal::QueueFull { .. } => {
                let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "peer_queue_full", text);
                e.retry_after = Some(60);
                e
            }
            Refusal::UnknownPeer { .. } => ApiError::new(StatusCode::FORBIDDEN, "not_a_peer", text),
            Refusal::TooLargeForPeer { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large_for_peer", text)
            }
            Refusal::Unsupported(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_federated", text)
            }
            Refusal::Internal(_) => {
                tracing::error!(error = %text, "federation fan-out failed");
                ApiError::internal()
            }
        }
    }
}

impl From<FedError> for ApiError {
    fn from(e: FedError) -> Self {
        let text = e.to_string();
        match e {
            FedError::Peer(PeerError::NotAllowed(_)) => {
                ApiError::new(StatusCode::FORBIDDEN, "not_a_peer", text)
            }
            FedError::Peer(_) => ApiError::new(StatusCode::BAD_GATEWAY, "peer_unreachable", text),
            FedError::NoSuchUser => ApiError::not_found("no such user"),
            FedError::NoSuchMedia => ApiError::not_found("no such media"),
            FedError::Invalid(_) => ApiError::bad_request("invalid", text),
            // The other person's consent, not the caller's: a code of its own, so that a client
            // does not offer the caller a grant that cannot help.
            FedError::PeerResidency { .. } => ApiError::new(
                StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
                "recipient_residency",
                text,
            ),
            FedError::Refused(r) => r.into(),
            FedError::Unauthenticated(_) => ApiError::unauthorized("unauthenticated", text),
            FedError::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", text),
            FedError::TxnConflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", text),
            FedError::TooLarge(_) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", text)
            }
            FedError::Store(s) => s.into(),
            other => {
                tracing::error!(error = %other, "federation operation failed");
                ApiError::internal()
            }
        }
    }
}

impl From<PolicyBookError> for ApiError {
    fn from(e: PolicyBookError) -> Self {
        let text = e.to_string();
        match e {
            PolicyBookError::Invalid { field, reason } => ApiError::invalid(field, &reason),
            PolicyBookError::Unknown(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_version", text)
            }
            PolicyBookError::Outdated { .. } => {
                ApiError::new(StatusCode::CONFLICT, "outdated_version", text)
            }
            PolicyBookError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "conflict", text),
            PolicyBookError::Store(s) => s.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_password_pool_answers_503_with_retry_after() {
        let api = ApiError::from(AccountError::Busy(7));
        assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!((api.code, api.retry_after), ("busy", Some(7)));
    }
}
