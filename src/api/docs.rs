//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` annotations and
//! the request/response types, served at `/docs/openapi.json`, and a self-contained page at
//! `/docs` that renders it (no external assets).
//!
//! The input limits live in the configuration (`inputSanitizer`, presets, tiers), so
//! [`spec`] writes them into the generated schemas when the document is served: lengths,
//! ranges and enums of the brief fields, the list's paging bounds, the idempotency key's
//! shape, and the error answers every route can give (401 and 429 behind the key check,
//! 403 on writes, 404 on a job path, 400/413/422 where a body or query is parsed). A client
//! generator or a fuzzer can then produce requests the server accepts.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{Shared, error, hub, icc, jobs, media, ops, qa};
use crate::config::Config;

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
        media::links,
        icc::memory, icc::patch_manifest, icc::manifest_versions, icc::approve, icc::request_changes, icc::reject,
        icc::comments, icc::add_comment,
        ops::presets, ops::cost_estimate, ops::health, ops::metrics, ops::alerts,
        qa::technical, qa::semantic,
    ),
    components(schemas(
        jobs::SubmitRequest, jobs::Submitted, jobs::Links, jobs::JobView, jobs::JobHeader, jobs::JobPage, jobs::JobSummary,
        media::JobLinks, media::SignedFile, media::SignedTrack,
        icc::ManifestPatch, icc::ChangeRequest, icc::RejectRequest, icc::NewComment, icc::ManifestVersion,
        crate::sanitize::BriefRequest, ops::Alert, qa::QaAnswer, hub::JobEvent, error::ErrorBody, error::ErrorDetail,
    )),
    modifiers(&BearerAuth),
    tags((name = "pipeline"), (name = "icc", description = "Interactive control centre: review and edit"),
         (name = "money"), (name = "qa", description = "Judge any file against a job's plan"), (name = "ops"))
)]
pub struct ApiDoc;

/// `GET /docs/openapi.json`.
pub async fn openapi(State(state): State<Shared>) -> Response {
    axum::Json(spec(&state.config)).into_response()
}

/// The OpenAPI document with the configured limits and every error answer written in.
pub fn spec(config: &Config) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    for schema in ["SubmitRequest", "BriefRequest"] {
        brief_limits(&mut doc["components"]["schemas"][schema]["properties"], config);
        preset_duration_caps(&mut doc["components"]["schemas"][schema], config);
    }
    if let Some(events) =
        doc["paths"]["/v1/jobs/{id}/events"]["get"]["responses"]["200"]["content"].get_mut("text/event-stream")
    {
        events["schema"] = event_stream_item();
    }
    if let Some(kind) = doc["components"]["schemas"]["JobEvent"]["properties"].get_mut("kind") {
        set(kind, json!({"enum": hub::EVENT_KINDS}));
    }
    if let Some(url) = doc["components"]["schemas"]["SubmitRequest"]["properties"].get_mut("callback_url") {
        set(url, json!({"format": "uri", "maxLength": super::webhook::MAX_URL_CHARS}));
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for (method, op) in item.iter_mut() {
                if matches!(method.as_str(), "get" | "post" | "patch" | "put" | "delete") {
                    operation_limits(path, method, op);
                }
            }
        }
    }
    doc
}

/// Merge `extra` into a schema object.
fn set(schema: &mut Value, extra: Value) {
    if let (Some(s), Value::Object(extra)) = (schema.as_object_mut(), extra) {
        s.extend(extra);
    }
}

/// An `enum` of `values`, with `null` when the schema allows null (optional fields).
fn one_of_values(schema: &mut Value, values: impl IntoIterator<Item = String>) {
    let mut values: Vec<Value> = values.into_iter().map(Value::String).collect();
    let nullable = schema["type"].as_array().is_some_and(|t| t.iter().any(|v| v == "null"));
    if nullable {
        values.push(Value::Null);
    }
    set(schema, json!({"enum": values}));
}

fn brief_limits(props: &mut Value, config: &Config) {
    let limits = &config.input_sanitizer;
    if props.is_null() {
        return;
    }
    set(
        &mut props["content"],
        json!({"minLength": limits.min_content_chars, "maxLength": limits.max_content_chars,
               "description": format!("The brief: at most {1} characters as sent, {}–{} after cleaning (controls and invisible \
                   characters removed, whitespace runs collapsed), with at least one visible letter, \
                   number or symbol.", limits.min_content_chars, limits.max_content_chars)}),
    );
    let longest = config.presets.values().map(|p| p.max_duration_sec).max().unwrap_or(limits.max_duration_sec);
    set(
        &mut props["duration_sec"],
        json!({"minimum": limits.min_duration_sec, "maximum": limits.max_duration_sec.min(longest)}),
    );
    one_of_values(&mut props["aspect_ratio"], limits.aspect_ratios.iter().map(|a| a.trim().to_owned()));
    one_of_values(&mut props["preset"], config.presets.keys().cloned());
    one_of_values(&mut props["priority"], limits.priorities.iter().cloned());
    one_of_values(&mut props["tier"], config.render.tiers.keys().cloned());
    one_of_values(&mut props["voice"], agents::voice::VoiceChoice::NAMES.iter().map(|v| (*v).to_owned()));
    set(&mut props["languages"], json!({"minItems": 1, "maxItems": limits.languages.len()}));
    if props["languages"]["items"].is_object() {
        one_of_values(&mut props["languages"]["items"], limits.languages.iter().cloned());
    }
    set(&mut props["budget"], json!({"exclusiveMinimum": 0, "maximum": 1_000_000}));
    set(
        &mut props["brand_id"],
        json!({"pattern": format!("^[A-Za-z0-9_-]{{1,{}}}$", limits.max_brand_id_chars),
               "maxLength": limits.max_brand_id_chars}),
    );
}

/// The duration cap that depends on the preset, as schema. JSON Schema cannot compare one
/// field with another, so the body takes one of a few shapes, one per distinct cap, each
/// naming the presets it covers; the default preset's shape also covers a body without a
/// preset (or with `null`). Without this a generator reads `duration_sec ≤ 180` and sends
/// 120 s for `quick_social` (capped at 30 s), which the server rightly refuses.
fn preset_duration_caps(schema: &mut Value, config: &Config) {
    if !schema.is_object() || config.presets.is_empty() {
        return;
    }
    let global = config.input_sanitizer.max_duration_sec;
    let default = crate::sanitize::default_preset_name(config);
    let mut by_cap: std::collections::BTreeMap<u32, Vec<Value>> = std::collections::BTreeMap::new();
    for (name, preset) in &config.presets {
        by_cap.entry(preset.max_duration_sec.min(global)).or_default().push(Value::String(name.clone()));
    }
    let shapes: Vec<Value> = by_cap
        .into_iter()
        .map(|(cap, mut names)| {
            let covers_default = names.iter().any(|n| n.as_str() == Some(default.as_str()));
            let mut shape = json!({"properties": {"duration_sec": {"maximum": cap}}});
            if covers_default {
                names.push(Value::Null);
            } else {
                shape["required"] = json!(["preset"]);
            }
            shape["properties"]["preset"] = json!({"enum": names});
            shape
        })
        .collect();
    set(schema, json!({"anyOf": shapes}));
    let caps: Vec<String> =
        config.presets.iter().map(|(name, p)| format!("{name} {}", p.max_duration_sec.min(global))).collect();
    set(
        &mut schema["properties"]["duration_sec"],
        json!({"description": format!(
            "Length in seconds: {}–{}, and at most the preset's maximum ({}; without a preset, {}'s).",
            config.input_sanitizer.min_duration_sec, global, caps.join(", "), default)}),
    );
}

/// One event of `GET /v1/jobs/{id}/events` as an event-stream reader sees it: the `event`
/// field names the kind and `data` is a JSON-encoded [`hub::JobEvent`]. (Before OpenAPI
/// 3.2's `itemSchema`, an event stream's `schema` describes one event; describing the
/// event by the JobEvent object itself made every event look wrong to a validator.)
fn event_stream_item() -> Value {
    json!({
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": hub::EVENT_KINDS},
            "data": {"type": "string", "contentMediaType": "application/json",
                     "contentSchema": {"$ref": "#/components/schemas/JobEvent"}},
            "id": {"type": "string"},
            "retry": {"type": "integer", "minimum": 0},
        },
    })
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
}

/// Query and header parameter limits, and the error answers the middleware and extractors
/// can give on this operation.
fn operation_limits(path: &str, method: &str, op: &mut Value) {
    // `get_mut`, not `op["parameters"]`: indexing a JSON object mutably inserts a null, which
    // is not a valid parameter list (schemathesis refused five operations for it).
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params {
            let (place, name) = (p["in"].as_str().map(str::to_owned), p["name"].as_str().map(str::to_owned));
            match (place.as_deref(), name.as_deref()) {
                (Some("query"), Some("limit")) => set(&mut p["schema"], json!({"minimum": 1, "maximum": 100})),
                (Some("query"), Some("cursor")) => set(
                    &mut p["schema"],
                    json!({"pattern": jobs::cursor_pattern(), "minLength": jobs::CURSOR_SHAPE.len(),
                           "maxLength": jobs::CURSOR_SHAPE.len()}),
                ),
                (Some("query"), Some("state")) => {
                    one_of_values(&mut p["schema"], jobs::STATE_NAMES.iter().map(|s| (*s).to_owned()))
                }
                (Some("header"), Some("Idempotency-Key")) => {
                    set(&mut p["schema"], json!({"minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7E]+$"}))
                }
                _ => {}
            }
        }
    }
    let body = op.get("requestBody").is_some();
    let query = op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
    let keyed = path.starts_with("/v1/");
    let mut add = |status: &str, description: &str| {
        let responses = &mut op["responses"];
        if responses.get(status).is_none() {
            responses[status] = error_response(description);
        }
    };
    if keyed {
        add("401", "no API key, or an unknown one");
        add("429", "rate limited, or too many failed authentications from this address (see Retry-After)");
        if method != "get" {
            add("403", "the key's role may not change anything");
        }
    }
    if path.contains("{id}") {
        add("404", "no such job (or resource of it)");
        add("400", "the path cannot be decoded");
    }
    if body {
        add("400", "the body is not JSON, or has data after the JSON value");
        add("413", "the body exceeds inputSanitizer.maxBodyBytes");
        add("422", "the JSON does not fit the schema or a limit");
    }
    if query {
        add("422", "a query parameter does not parse or is out of range");
    }
}

/// `GET /docs`: a page that renders the spec.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("web/docs.html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_valid_parameter_list_and_the_event_stream_is_documented() {
        let doc = spec(&Config::builtin());
        let paths = doc["paths"].as_object().unwrap();
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                if let Some(p) = op.get("parameters") {
                    assert!(p.is_array(), "{method} {path}: parameters must be a list, not {p}");
                }
            }
        }
        let events = &doc["paths"]["/v1/jobs/{id}/events"]["get"]["responses"]["200"]["content"];
        assert!(events.get("text/event-stream").is_some(), "{events}");
    }
}
