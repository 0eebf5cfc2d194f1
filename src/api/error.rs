//! The API's one error type: every failure answers `{error: {code, message, field?}}` with
//! the right status, so clients can branch on `code` and show `message`.
//!
//! Errors that axum produces itself (an extractor's rejection, a body over the limit, 405,
//! the 404 of an unknown route) come as plain text or an empty body; [`json_errors`], a
//! layer around the whole router, rewrites every such answer into the same JSON shape,
//! keeping its status and headers (`Allow`, `Retry-After`).

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
            StoreError::Conflict { .. } | StoreError::LeaseLost { .. } => ApiError::conflict(e.to_string()),
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
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { unknown_field(&inner.to_string()).unwrap_or_default() } else { path };
                ApiError::invalid(field, "format", inner.to_string())
            }
            _ => ApiError::bad_request(format!("malformed JSON: {inner}")),
        }
    })?;
    de.end().map_err(|e| ApiError::bad_request(format!("malformed JSON: data after the JSON value: {e}")))?;
    Ok(value)
}

/// The code of an error answer axum produced itself, by status.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::RANGE_NOT_SATISFIABLE => "range_not_satisfiable",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Middleware: every 4xx/5xx answer that is not already JSON becomes the JSON error shape,
/// with the same status and headers; its text, if any, becomes the message.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 16 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body exceeds inputSanitizer.maxBodyBytes".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("");
            format!("this route does not accept that method (allowed: {allow})")
        }
        StatusCode::NOT_FOUND if text.is_empty() => "no such route".to_owned(),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_owned(),
        _ => text,
    };
    let json = ApiError { retry_after: None, ..ApiError::new(status, code_for(status), message) }.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, json.into_body())
}

/// Map a query-string rejection to 422 naming the parameter at fault (axum reports
/// `Failed to deserialize query string: <field>: <reason>`).
pub fn query_rejection(e: axum::extract::rejection::QueryRejection) -> ApiError {
    let text = e.body_text();
    let detail = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
    let field = match detail.split_once(": ") {
        Some((f, _)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => f.to_owned(),
        _ => ["duplicate field `", "missing field `"]
            .iter()
            .find_map(|p| detail.strip_prefix(p))
            .and_then(|r| r.split('`').next())
            .unwrap_or("query")
            .to_owned(),
    };
    ApiError::invalid(field, "format", format!("bad query string: {detail}"))
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

    #[test]
    fn data_after_the_json_value_is_400() {
        let e = parse_json::<T>(br#"{"a": 1}xx"#).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "malformed_json"));
        assert!(parse_json::<T>(br#"{"a": 1}"#).is_ok());
        assert!(parse_json::<T>(b"{\"a\": 1}\n  ").is_ok(), "trailing whitespace is fine");
    }
}
