//! The API's one error type: every failure answers `{error: {code, message, field?}}` with
//! the right status, so clients can branch on `code` and show `message`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::pipeline::driver::DriverError;
use crate::sanitize::FieldError;
use crate::store::StoreError;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code (`validation_failed`, `not_found`, `conflict`…).
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, for validation errors.
    pub field: Option<String>,
    /// The broken rule, for validation errors.
    pub rule: Option<&'static str>,
    /// Seconds after which a retry may succeed (429, 503).
    pub retry_after: Option<u64>,
}

/// The JSON body of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error's fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The broken rule, for validation errors (`range`, `required`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None, rule: None, retry_after: None }
    }
    /// 400: the body is not JSON.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 409: the resource is not in a state that accepts this.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    /// 422 naming a field.
    pub fn invalid(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message);
        e.field = Some(field.into());
        e.rule = Some(rule);
        e
    }
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    /// 429 with Retry-After.
    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, code, message);
        e.retry_after = Some(retry_after.max(1));
        e
    }
    /// 500; the detail is logged, not hidden.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message.to_string())
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::invalid(e.field, e.rule, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict { .. } => ApiError::conflict(e.to_string()),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal(other)
            }
        }
    }
}

impl From<DriverError> for ApiError {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Store(s) => s.into(),
            DriverError::Rejected(r) => ApiError::conflict(r.to_string()),
            e @ DriverError::SameApprover { .. } => ApiError::conflict(e.to_string()),
            DriverError::Invalid(f) => f.into(),
            DriverError::BudgetRefused(b) => {
                ApiError::new(StatusCode::PAYMENT_REQUIRED, "daily_budget_exhausted", b.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
                rule: self.rule.map(str::to_owned),
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Parse a JSON body into `T`: 400 when it is not JSON, 422 naming the field when it is
/// JSON of the wrong shape.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty; send a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { unknown_field(&inner.to_string()).unwrap_or_default() } else { path };
                ApiError::invalid(field, "format", inner.to_string())
            }
            _ => ApiError::bad_request(format!("malformed JSON: {inner}")),
        }
    })
}

/// serde names an unknown field in its message (`unknown field `x`, expected …`).
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: u32,
    }

    #[test]
    fn syntax_is_400_and_shape_is_422_with_the_field() {
        assert_eq!(parse_json::<T>(b"{").unwrap_err().status, StatusCode::BAD_REQUEST);
        let e = parse_json::<T>(br#"{"a": "x"}"#).unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("a")));
        let e = parse_json::<T>(br#"{"a": 1, "b": 2}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("b"));
    }
}
