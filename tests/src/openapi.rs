//! The API document (`api/src/openapi.json`) as a contract the black-box tests hold the
//! node to: the document's own validity (the official OpenAPI 3.0 meta-schema, the typed
//! `openapiv3` model, and the rules that make it exact), every response the test `Client`
//! receives checked against the operation and status it answers for, and every event frame
//! of the WebSocket against `Event`.
//!
//! Responses are validated with `jsonschema` (draft 4, the dialect OpenAPI 3.0 schemas extend),
//! after one translation: OpenAPI 3.0's `nullable: true` becomes JSON Schema's `"null"` type.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use jsonschema::{Draft, Registry, Validator};
use serde_json::{Value, json};

/// The document the node serves.
pub const DOCUMENT: &str = include_str!("../../api/src/openapi.json");

/// The official JSON Schema of OpenAPI 3.0.x documents, id
/// `https://spec.openapis.org/oas/3.0/schema/2021-09-28` (the OpenAPI Initiative's), unmodified:
/// taken from the PyPI package `openapi-spec-validator` 0.9.0, file
/// `openapi_spec_validator/resources/schemas/v3.0/schema.json`.
pub const META_SCHEMA: &str = include_str!("openapi-3.0-schema.json");

/// SHA-256 of [`META_SCHEMA`] as shipped; a test proves the copy is unmodified.
pub const META_SCHEMA_SHA256: &str =
    "43da9f20f670535ee9a214185d066a8796649420ccfd9422978f51b5281a5648";

const DOC_URI: &str = "urn:shanliao:openapi";
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// What the document says one operation may answer.
struct Operation {
    /// By status key as written (`"200"`, `"4XX"`, `"default"`): the JSON body's validator, or
    /// `None` when that answer has no JSON content.
    responses: BTreeMap<String, Option<Validator>>,
}

/// The document, compiled once per test binary.
struct Contract {
    /// `(METHOD, path template)` → operation.
    operations: BTreeMap<(String, String), Operation>,
    /// `#/components/schemas/Event`: each frame of the event WebSocket.
    event: Validator,
}

static CONTRACT: LazyLock<Contract> =
    LazyLock::new(|| Contract::compile(DOCUMENT).unwrap_or_else(|e| panic!("openapi.json: {e}")));

impl Contract {
    fn compile(text: &str) -> Result<Contract, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let doc = json_schema_of(&doc);
        let registry = Registry::new()
            .draft(Draft::Draft4)
            .add(DOC_URI, &doc)
            .and_then(|r| r.prepare())
            .map_err(|e| format!("cannot index the document: {e}"))?;
        let mut operations = BTreeMap::new();
        for (path, item) in doc["paths"].as_object().ok_or("no paths")? {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let mut responses = BTreeMap::new();
                for (status, resp) in op["responses"].as_object().ok_or("no responses")? {
                    let (resp, at) = response_of(&doc, resp).unwrap_or_else(|| {
                        (
                            resp,
                            format!("/paths/{}/{method}/responses/{status}", escape(path)),
                        )
                    });
                    let validator = match resp.pointer("/content/application~1json/schema") {
                        None => None,
                        Some(_) => {
                            let pointer = format!("{at}/content/application~1json/schema");
                            let schema = json!({ "$ref": format!("{DOC_URI}#{pointer}") });
                            let v = jsonschema::options()
                                .with_draft(Draft::Draft4)
                                .with_registry(&registry)
                                .should_validate_formats(true)
                                .build(&schema)
                                .map_err(|e| format!("{method} {path} {status}: {e}"))?;
                            Some(v)
                        }
                    };
                    responses.insert(status.clone(), validator);
                }
                operations.insert(
                    (method.to_uppercase(), path.clone()),
                    Operation { responses },
                );
            }
        }
        let event = jsonschema::options()
            .with_draft(Draft::Draft4)
            .with_registry(&registry)
            .should_validate_formats(true)
            .build(&json!({ "$ref": format!("{DOC_URI}#/components/schemas/Event") }))
            .map_err(|e| format!("Event: {e}"))?;
        Ok(Contract { operations, event })
    }

    /// The documented template `path` is an instance of, preferring literal segments.
    fn template_of(&self, method: &str, path: &str) -> Option<(&str, &Operation)> {
        let segments: Vec<&str> = path.split('/').collect();
        self.operations
            .iter()
            .filter(|((m, _), _)| m == method)
            .filter_map(|((_, template), op)| {
                let parts: Vec<&str> = template.split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut literal = 0;
                for (t, s) in parts.iter().zip(&segments) {
                    if t.starts_with('{') && t.ends_with('}') {
                        if s.is_empty() {
                            return None;
                        }
                    } else if t == s {
                        literal += 1;
                    } else {
                        return None;
                    }
                }
                Some((literal, template.as_str(), op))
            })
            .max_by_key(|(literal, _, _)| *literal)
            .map(|(_, t, op)| (t, op))
    }
}

/// Checks one response against the document: `Ok` when `method path` is not a documented
/// operation (another API, such as federation's, or a route's unknown method); otherwise the
/// status must be declared for the operation and a JSON body must match its schema. The error
/// names route, status and what is wrong.
pub fn check_response(
    method: &str,
    path: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), String> {
    let path = path.split('?').next().unwrap_or(path);
    let Some((template, op)) = CONTRACT.template_of(method, path) else {
        return Ok(());
    };
    let route = format!("{method} {template}");
    let code = status.to_string();
    let range = format!("{}XX", status / 100);
    let Some(validator) = [code.as_str(), range.as_str(), "default"]
        .iter()
        .find_map(|k| op.responses.get(*k))
    else {
        return Err(format!(
            "{route} answered {status}, which the document does not declare for it (declared: {})",
            op.responses.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    };
    let is_json = content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
    match validator {
        Some(v) => {
            if !is_json {
                return Err(format!(
                    "{route} answered {status} with Content-Type {content_type:?}, documented as application/json"
                ));
            }
            let value: Value = serde_json::from_slice(body).map_err(|e| {
                format!("{route} answered {status} with a body that is not JSON: {e}")
            })?;
            violations(v, &value).map_err(|e| {
                format!("{route} answered {status} with a body the document does not allow: {e}")
            })
        }
        None if is_json && !body.is_empty() => Err(format!(
            "{route} answered {status} with a JSON body the document does not describe"
        )),
        None => Ok(()),
    }
}

/// Checks one frame of the event WebSocket against the document's `Event`.
pub fn check_event(event: &Value) -> Result<(), String> {
    violations(&CONTRACT.event, event)
        .map_err(|e| format!("event frame {event} is not an Event: {e}"))
}

/// Every way `value` breaks `v`, each with where, joined.
fn violations(v: &Validator, value: &Value) -> Result<(), String> {
    let errors: Vec<String> = v
        .iter_errors(value)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Everything wrong with the document `text`; empty when it is valid OpenAPI 3.0 and as exact
/// as this project requires.
pub fn document_errors(text: &str) -> Vec<String> {
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return vec![format!("not JSON: {e}")],
    };
    let mut errors = Vec::new();
    let meta: Value = serde_json::from_str(META_SCHEMA).expect("meta-schema is JSON");
    match jsonschema::draft4::new(&meta) {
        Ok(v) => errors.extend(
            v.iter_errors(&doc)
                .map(|e| format!("meta-schema, at `{}`: {e}", e.instance_path())),
        ),
        Err(e) => errors.push(format!("meta-schema does not compile: {e}")),
    }
    if let Err(e) = serde_json::from_value::<openapiv3::OpenAPI>(doc.clone()) {
        errors.push(format!("openapiv3 cannot read it: {e}"));
    }
    errors.extend(exactness_errors(&doc));
    if let Err(e) = Contract::compile(text) {
        errors.push(format!("response schemas do not compile: {e}"));
    }
    errors
}

/// The rules beyond validity that let a client be generated and a response be checked exactly:
/// every operation has a unique `operationId`, declared tags and its own `security`; every object schema an answer
/// can carry lists its `required` properties and refuses others.
fn exactness_errors(doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let declared_tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    let mut ids = BTreeSet::new();
    let empty = serde_json::Map::new();
    for (path, item) in doc["paths"].as_object().unwrap_or(&empty) {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let route = format!("{} {path}", method.to_uppercase());
            match op["operationId"].as_str() {
                Some(id) if ids.insert(id.to_string()) => {}
                Some(id) => errors.push(format!("{route}: operationId `{id}` is used twice")),
                None => errors.push(format!("{route}: no operationId")),
            }
            match op["tags"].as_array() {
                Some(tags) if !tags.is_empty() => {
                    for t in tags.iter().filter_map(Value::as_str) {
                        if !declared_tags.contains(t) {
                            errors.push(format!("{route}: tag `{t}` is not declared"));
                        }
                    }
                }
                _ => errors.push(format!("{route}: no tags")),
            }
            // Said on each operation, `[]` for none, so no client guesses.
            if !op["security"].is_array() {
                errors.push(format!("{route}: no security"));
            }
            for (status, resp) in op["responses"].as_object().unwrap_or(&empty) {
                let resp = response_of(doc, resp).map_or(resp, |(r, _)| r);
                if let Some(schema) = resp.pointer("/content/application~1json/schema") {
                    let at = format!("{route} {status}");
                    let mut walk = Walk::new(doc, Side::Response, &mut errors);
                    walk.check(schema, &at);
                }
            }
            if let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") {
                let at = format!("{route} request body");
                Walk::new(doc, Side::Request, &mut errors).check(schema, &at);
            }
            let params = item["parameters"].as_array().into_iter().flatten();
            for p in params.chain(op["parameters"].as_array().into_iter().flatten()) {
                let s = &p["schema"];
                let constrained =
                    s.get("pattern").is_some() || s.get("enum").is_some() || s["type"] == "integer";
                if p["in"] == "path" && !constrained {
                    errors.push(format!(
                        "{route}: path parameter `{}` has no pattern, enum or integer type",
                        p["name"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
    }
    errors
}

/// Which way a schema describes JSON.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    /// What the node answers: closed objects with their required properties named.
    Response,
    /// What a client sends: closed objects (the node refuses unknown fields).
    Request,
}

/// Walks a schema (through `$ref`, `allOf`, `oneOf`, `anyOf`, properties and items): an object
/// with properties must refuse any other and, in an answer, name which are required. An
/// object whose properties are all optional by design says so with `x-all-optional: true`.
struct Walk<'a> {
    doc: &'a Value,
    side: Side,
    errors: &'a mut Vec<String>,
    seen: BTreeSet<String>,
}

impl<'a> Walk<'a> {
    fn new(doc: &'a Value, side: Side, errors: &'a mut Vec<String>) -> Self {
        Walk {
            doc,
            side,
            errors,
            seen: BTreeSet::new(),
        }
    }

    fn check(&mut self, schema: &Value, at: &str) {
        if let Some(r) = schema["$ref"].as_str() {
            if self.seen.insert(r.to_string()) {
                match r.strip_prefix('#').and_then(|p| self.doc.pointer(p)) {
                    Some(target) => self.check(target, &format!("{at} → {r}")),
                    None => self
                        .errors
                        .push(format!("{at}: `$ref` {r} does not resolve")),
                }
            }
            return;
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            for (i, s) in schema[key].as_array().into_iter().flatten().enumerate() {
                self.check(s, &format!("{at}/{key}/{i}"));
            }
        }
        if let Some(items) = schema.get("items") {
            self.check(items, &format!("{at}/items"));
        }
        if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            self.check(extra, &format!("{at}/additionalProperties"));
        }
        let Some(props) = schema["properties"].as_object() else {
            return;
        };
        if schema["additionalProperties"] != Value::Bool(false) {
            self.errors.push(format!(
                "{at}: object without `additionalProperties: false`"
            ));
        }
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if self.side == Side::Response
            && required.is_empty()
            && schema["x-all-optional"] != Value::Bool(true)
        {
            self.errors.push(format!("{at}: object without `required`"));
        }
        for r in &required {
            if !props.contains_key(*r) {
                self.errors
                    .push(format!("{at}: required `{r}` is not a property"));
            }
        }
        for (name, p) in props {
            self.check(p, &format!("{at}/{name}"));
        }
    }
}

/// `doc` with every OpenAPI 3.0 `nullable: true` schema written as JSON Schema does: `"null"`
/// added to its `type`, or, where the schema is composed (`allOf`, …) and would refuse null
/// anyway, the schema or null.
fn json_schema_of(doc: &Value) -> Value {
    match doc {
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "nullable")
                .map(|(k, v)| (k.clone(), json_schema_of(v)))
                .collect();
            if map.get("nullable") != Some(&Value::Bool(true)) {
                return Value::Object(out);
            }
            let composed = ["allOf", "oneOf", "anyOf", "$ref"]
                .iter()
                .any(|k| out.contains_key(*k));
            if let (false, Some(Value::String(t))) = (composed, out.get("type").cloned()) {
                out.insert("type".into(), json!([t, "null"]));
                if let Some(Value::Array(e)) = out.get_mut("enum") {
                    e.push(Value::Null);
                }
                Value::Object(out)
            } else {
                json!({ "anyOf": [Value::Object(out), { "type": "null" }] })
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(json_schema_of).collect()),
        other => other.clone(),
    }
}

/// A JSON pointer segment for `s`, as it goes in a URI fragment.
/// A response given as `{"$ref": "#/components/responses/X"}`: the response it names and its
/// JSON pointer in the document.
fn response_of<'a>(doc: &'a Value, resp: &Value) -> Option<(&'a Value, String)> {
    let pointer = resp["$ref"].as_str()?.strip_prefix('#')?;
    pointer
        .starts_with("/components/responses/")
        .then(|| doc.pointer(pointer).map(|r| (r, pointer.to_string())))
        .flatten()
}

fn escape(s: &str) -> String {
    s.replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D")
}
