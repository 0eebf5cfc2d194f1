//! The ICC web client: plain HTML, JavaScript and CSS compiled into the binary (no build
//! step, no external assets). It talks to the same `/v1` API as any client.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

/// `GET /`.
pub async fn index() -> Html<&'static str> {
    Html(include_str!("web/index.html"))
}

/// `GET /app.js`.
pub async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("web/app.js")).into_response()
}

/// `GET /style.css`.
pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("web/style.css")).into_response()
}
