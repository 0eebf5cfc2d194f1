//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` annotations and
//! the request/response types, served at `/docs/openapi.json`, and a self-contained page at
//! `/docs` that renders it (no external assets).

use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{error, hub, icc, jobs, ops};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("aip_…").build()),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "aiprod", description = "Brief in, quality-checked subtitled video out: REST API and ICC."),
    paths(
        jobs::submit, jobs::list, jobs::get_job, jobs::cancel, jobs::events, jobs::video, jobs::artifact,
        icc::memory, icc::patch_manifest, icc::manifest_versions, icc::approve, icc::request_changes, icc::reject,
        icc::comments, icc::add_comment,
        ops::presets, ops::cost_estimate, ops::health, ops::metrics, ops::alerts,
    ),
    components(schemas(
        jobs::SubmitRequest, jobs::Submitted, jobs::Links, jobs::JobView, jobs::JobHeader, jobs::JobPage, jobs::JobSummary,
        icc::ManifestPatch, icc::ChangeRequest, icc::RejectRequest, icc::NewComment, icc::ManifestVersion,
        crate::sanitize::BriefRequest, ops::Alert, hub::JobEvent, error::ErrorBody, error::ErrorDetail,
    )),
    modifiers(&BearerAuth),
    tags((name = "pipeline"), (name = "icc", description = "Interactive control centre: review and edit"),
         (name = "money"), (name = "ops"))
)]
pub struct ApiDoc;

/// `GET /docs/openapi.json`.
pub async fn openapi() -> Response {
    axum::Json(ApiDoc::openapi()).into_response()
}

/// `GET /docs`: a page that renders the spec.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("web/docs.html"))
}
