//! Errors as REST callers and the dashboard's pages see them: one shape,
//! `{code, message, details}`, with the status it is sent with. Internals are logged once
//! here and never sent.

use adit_core::api;
use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::Error;

/// An error as REST callers see it.
pub struct ApiError {
    status: StatusCode,
    body: api::ApiError,
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn message(&self) -> &str {
        &self.body.message
    }

    pub(super) fn new(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        Self {
            status,
            body: api::ApiError {
                code: code.to_owned(),
                message: message.into(),
                details,
            },
        }
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        use serde_json::json;
        match &err {
            Error::NotFound { what, name } => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                err.to_string(),
                json!({ "resource": what, "name": name }),
            ),
            Error::Conflict(message) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                message.clone(),
                serde_json::Value::Null,
            ),
            Error::FailedPrecondition(message) => Self::new(
                StatusCode::CONFLICT,
                "failed_precondition",
                message.clone(),
                serde_json::Value::Null,
            ),
            Error::InvalidArgument { field, message } => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                err.to_string(),
                json!({ "field": field, "reason": message }),
            ),
            Error::RateLimited(message) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                message.clone(),
                serde_json::Value::Null,
            ),
            Error::DeviceLogin(wait) => Self::new(
                StatusCode::BAD_REQUEST,
                wait.code(),
                wait.message(),
                serde_json::Value::Null,
            ),
            Error::Unauthenticated => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "log in, or send a valid API token (Authorization: Bearer …)",
                serde_json::Value::Null,
            ),
            Error::LoginFailed => Self::new(
                StatusCode::UNAUTHORIZED,
                "login_failed",
                err.to_string(),
                serde_json::Value::Null,
            ),
            Error::Forbidden(message) => Self::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                message.clone(),
                serde_json::Value::Null,
            ),
            _ => {
                tracing::error!(error = %err, "internal error serving the API");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the server log has the details",
                    serde_json::Value::Null,
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The answer for any path no route serves.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such API endpoint",
        serde_json::Value::Null,
    )
}
