//! Typed payloads and schema evolution.
//!
//! The `type` strings are a public contract and never change; a payload's *shape* is versioned in
//! the CloudEvents `dataschema` attribute as `urn:trustledger:schema:<name>:v<N>`. Stored entries
//! are never rewritten: a reader decodes an entry of any version it knows by upcasting the old
//! JSON, one version at a time, to the current shape ([`EventPayload::upcast`]).

use crate::entry::{Entry, EventDraft};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// Every `type` starts with this.
pub const TYPE_PREFIX: &str = "trustledger.";

/// A payload type of the catalogue.
pub trait EventPayload: Serialize + DeserializeOwned {
    /// The name after [`TYPE_PREFIX`], e.g. `deployment.submitted`.
    const NAME: &'static str;
    /// The current schema version (1 for a type that has never changed).
    const VERSION: u32;

    /// Turns the JSON of schema version `from` (< [`Self::VERSION`]) into that of `from + 1`.
    ///
    /// # Errors
    /// A message when the old payload cannot be upcast (it was never valid).
    fn upcast(from: u32, data: Value) -> Result<Value, String> {
        let _ = data;
        Err(format!("{} has no schema version {from}", Self::NAME))
    }
}

/// [`EventPayload::upcast`] for a type whose later versions only added optional members: an
/// older payload is already a valid payload of the current version.
///
/// # Errors
/// For a version this type never had.
pub fn upcast_by_added_optional_members<P: EventPayload>(
    from: u32,
    data: Value,
) -> Result<Value, String> {
    if (1..P::VERSION).contains(&from) {
        Ok(data)
    } else {
        Err(format!("{} has no schema version {from}", P::NAME))
    }
}

/// The full `type` of a payload.
pub fn event_type<P: EventPayload>() -> String {
    format!("{TYPE_PREFIX}{}", P::NAME)
}

/// Whether `event_type` is `P`'s full `type` string. Allocation-free: decoding asks this of
/// every catalogued type in turn, for every entry folded.
pub fn is_event_type<P: EventPayload>(event_type: &str) -> bool {
    event_type.strip_prefix(TYPE_PREFIX) == Some(P::NAME)
}

/// The `dataschema` URI of version `version` of a payload.
pub fn schema_uri(name: &str, version: u32) -> String {
    format!("urn:trustledger:schema:{name}:v{version}")
}

/// Why an entry does not decode as a payload type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The entry has another type.
    #[error("entry type {found:?} is not {expected:?}")]
    WrongType {
        /// Expected type.
        expected: String,
        /// Found type.
        found: String,
    },
    /// The `dataschema` is missing, malformed, or newer than this reader knows.
    #[error("unsupported dataschema {0:?}")]
    UnsupportedSchema(Option<String>),
    /// The payload does not have the shape its schema version says.
    #[error("payload does not match its schema: {0}")]
    Shape(String),
}

fn schema_version(name: &str, schema: Option<&str>) -> Option<u32> {
    // The shape `schema_uri` writes, matched piecewise so that decoding allocates nothing here.
    let digits = schema?
        .strip_prefix("urn:trustledger:schema:")?
        .strip_prefix(name)?
        .strip_prefix(":v")?;
    if digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// Decodes an entry's payload as `P`, upcasting older schema versions.
///
/// # Errors
/// [`DecodeError`] for another type, an unknown schema version, or a payload of the wrong shape.
pub fn decode<P: EventPayload>(entry: &Entry) -> Result<P, DecodeError> {
    if !is_event_type::<P>(&entry.event_type) {
        return Err(DecodeError::WrongType {
            expected: event_type::<P>(),
            found: entry.event_type.clone(),
        });
    }
    let version = schema_version(P::NAME, entry.data_schema.as_deref())
        .filter(|v| (1..=P::VERSION).contains(v))
        .ok_or_else(|| DecodeError::UnsupportedSchema(entry.data_schema.clone()))?;
    let shape = |e: serde_json::Error| DecodeError::Shape(without_position(&e));
    if version == P::VERSION {
        // The common case reads the stored JSON text straight into the type: no tree built.
        return serde_json::from_str(entry.data_text()).map_err(shape);
    }
    let mut data = entry.data().clone();
    for from in version..P::VERSION {
        data = P::upcast(from, data).map_err(DecodeError::Shape)?;
    }
    serde_json::from_value(data).map_err(shape)
}

/// A decoding error's message without the " at line 1 column N" that serde_json adds when it
/// reads text: the message a fold records for an undecodable entry is part of the projection, and
/// must read the same whether the payload was decoded from the stored text or from a tree.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&position) {
        Some(message) if e.line() > 0 => message.to_owned(),
        _ => text,
    }
}

/// A draft carrying `payload` at the current schema version.
///
/// # Errors
/// A message if the payload does not serialise to a JSON object.
pub fn draft<P: EventPayload>(
    id: Uuid,
    subject: impl Into<String>,
    actor: impl Into<String>,
    correlation_id: impl Into<String>,
    payload: &P,
) -> Result<EventDraft, String> {
    let data = serde_json::to_value(payload).map_err(|e| e.to_string())?;
    let mut draft = EventDraft::new(id, event_type::<P>(), subject, actor, correlation_id, data);
    draft.data_schema = Some(schema_uri(P::NAME, P::VERSION));
    Ok(draft)
}

/// Access control events: a principal's token and roles.
pub mod access {
    use super::EventPayload;
    use serde::{Deserialize, Serialize};
    use serde_json::{json, Value};

    /// `trustledger.access.granted`: a bearer token (stored only as its SHA-256) now maps to a
    /// principal with these roles.
    ///
    /// Schema history: v1 carried a single `role`; v2 carries `roles` (a principal may hold several).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AccessGranted {
        /// The principal's name.
        pub principal: String,
        /// Its roles, sorted.
        pub roles: Vec<String>,
        /// Lowercase hex SHA-256 of the bearer token.
        pub token_sha256: String,
    }

    impl EventPayload for AccessGranted {
        const NAME: &'static str = "access.granted";
        const VERSION: u32 = 2;

        fn upcast(from: u32, data: Value) -> Result<Value, String> {
            match from {
                1 => {
                    let Value::Object(mut map) = data else {
                        return Err("v1 payload is not an object".into());
                    };
                    let role = map.remove("role").ok_or("v1 payload has no role")?;
                    map.insert("roles".into(), json!([role]));
                    Ok(Value::Object(map))
                }
                other => Err(format!("access.granted has no schema version {other}")),
            }
        }
    }

    /// `trustledger.access.revoked`: a token no longer authenticates anyone.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AccessRevoked {
        /// The principal whose token it was.
        pub principal: String,
        /// Lowercase hex SHA-256 of the revoked token.
        pub token_sha256: String,
        /// Why.
        pub reason: String,
    }

    impl EventPayload for AccessRevoked {
        const NAME: &'static str = "access.revoked";
        const VERSION: u32 = 1;
    }
}
