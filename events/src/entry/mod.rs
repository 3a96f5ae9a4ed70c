//! The pinned entry format: a CloudEvents 1.0 structured-mode JSON event,
//! serialised canonically per RFC 8785, whose stored bytes are the bytes that are hashed.

use crate::canonical::{self, CanonicalError};
use crate::limits::{
    ENTRY_BYTES_MAX, SUBJECT_BYTES_MAX, TOKEN_BYTES_MAX, TYPE_BYTES_MAX, URI_BYTES_MAX,
};
use crate::time::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// A SHA-256 digest: an entry hash, a Merkle node or a root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The `prevhash` of entry 0: 64 zero hex digits.
    pub const ZERO: Digest = Digest([0; 32]);

    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Lowercase hex, as entries spell digests.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 lowercase hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let digits: &[u8; 64] = text.as_bytes().try_into().ok()?;
        let mut out = [0u8; 32];
        // Every entry's `prevhash` is decoded when the log is read or verified: a table lookup
        // per digit, with one check at the end, instead of a branch per digit.
        let mut invalid = 0u8;
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let (high, low) = (
                LOWER_HEX_VALUES[usize::from(pair[0])],
                LOWER_HEX_VALUES[usize::from(pair[1])],
            );
            invalid |= high | low;
            *byte = high << 4 | low;
        }
        (invalid & !0x0f == 0).then_some(Self(out))
    }
}

/// The value of each lowercase hex digit; `0xff` for every other byte.
const LOWER_HEX_VALUES: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut digit = 0;
    while digit < 16 {
        table[b"0123456789abcdef"[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

/// A lowercase hyphenated UUID (the only spelling entries use), decoded; `None` for any other
/// spelling. One pass through the hex table: every entry's id is read when the log is read or
/// verified, and parsing any spelling, then re-encoding to compare, cost twice as much.
fn parse_lowercase_uuid(text: &str) -> Option<Uuid> {
    let text: &[u8; 36] = text.as_bytes().try_into().ok()?;
    let mut bytes = [0u8; 16];
    let mut invalid = 0u8;
    let mut at = 0;
    for byte in &mut bytes {
        // The groups (8-4-4-4-12 digits) are of even length, so no pair spans a hyphen.
        if matches!(at, 8 | 13 | 18 | 23) {
            if text[at] != b'-' {
                return None;
            }
            at += 1;
        }
        let (high, low) = (
            LOWER_HEX_VALUES[usize::from(text[at])],
            LOWER_HEX_VALUES[usize::from(text[at + 1])],
        );
        invalid |= high | low;
        *byte = high << 4 | low;
        at += 2;
    }
    (invalid & !0x0f == 0).then_some(Uuid::from_bytes(bytes))
}

/// The value of one lowercase hex digit.
pub fn lower_hex_digit(digit: u8) -> Option<u8> {
    let value = LOWER_HEX_VALUES[usize::from(digit)];
    (value < 16).then_some(value)
}

/// Serialized as its lowercase hex, as entries spell digests.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("a digest is 64 lowercase hex digits"))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What a caller asks to append: everything but the position, which the writer assigns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDraft {
    /// Event id, the idempotency key.
    pub id: Uuid,
    /// Event type, e.g. `trustledger.deployment.submitted`.
    pub event_type: String,
    /// The stream, e.g. `deployment/8f3a…`.
    pub subject: String,
    /// The authenticated principal that caused the event.
    pub actor: String,
    /// Correlation id shared by the events of one business operation.
    pub correlation_id: String,
    /// The event that caused this one, where there is one.
    pub causation_id: Option<String>,
    /// The payload's schema, as a URI naming the type and version (see [`crate::catalogue`]).
    pub data_schema: Option<String>,
    /// The payload object.
    pub data: Value,
    /// Optimistic concurrency on `subject`.
    pub expected: ExpectedVersion,
}

/// A draft checked and its payload encoded by [`EventDraft::prepare`], ready for the writer.
#[derive(Debug, Clone)]
pub(crate) struct PreparedDraft {
    pub(crate) draft: EventDraft,
    /// The canonical JSON text of `draft.data`.
    data_json: Vec<u8>,
}

/// Optimistic concurrency: what the caller believes about the stream before its append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpectedVersion {
    /// No expectation.
    #[default]
    Any,
    /// The stream must be empty.
    NoStream,
    /// The stream's last entry must have exactly this `streamversion`.
    Exactly(u64),
}

/// Why a draft can never become an entry (independent of the log's state).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidDraft {
    /// A header attribute is empty, too long or has characters it may not have.
    #[error("{field} is invalid: {reason}")]
    Field {
        /// The attribute's name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `data` is not a JSON object.
    #[error("data must be a JSON object")]
    DataNotObject,
    /// `data` breaks the number profile.
    #[error("data: {0}")]
    Data(#[from] CanonicalError),
    /// The entry would exceed [`ENTRY_BYTES_MAX`].
    #[error("entry would be {bytes} bytes, over the limit of {max}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

fn check_token(field: &'static str, value: &str, max: usize) -> Result<(), InvalidDraft> {
    let reason = if value.is_empty() {
        "must not be empty".to_owned()
    } else if value.len() > max {
        format!("is {} bytes, over the limit of {max}", value.len())
    } else if has_control_character(value) {
        "must not contain control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(InvalidDraft::Field { field, reason })
}

/// Whether `value` holds a character `char::is_control` calls one. Every stored entry's header
/// tokens are checked when it is read: printable ASCII, the usual case, is settled in one pass a
/// byte at a time, and characters are decoded only for text holding some other byte.
fn has_control_character(value: &str) -> bool {
    value.bytes().any(|b| !(0x20..0x7f).contains(&b)) && value.chars().any(char::is_control)
}

fn check_type(value: &str) -> Result<(), InvalidDraft> {
    // Dot-separated words, each non-empty, of [a-z0-9_]; at least two words. One pass, which
    // settles the usual case: such a type is not empty and holds no control character.
    if value.len() <= TYPE_BYTES_MAX && is_dotted_words(value) {
        return Ok(());
    }
    check_token("type", value, TYPE_BYTES_MAX)?;
    Err(InvalidDraft::Field {
        field: "type",
        reason: "must be dot-separated words of [a-z0-9_], e.g. trustledger.deployment.submitted"
            .to_owned(),
    })
}

/// Whether `value` is two or more dot-separated words, each non-empty, of `[a-z0-9_]`.
fn is_dotted_words(value: &str) -> bool {
    let mut previous = b'.';
    let mut dots = 0;
    let mut well_formed = true;
    for b in value.bytes() {
        if b == b'.' {
            well_formed &= previous != b'.';
            dots += 1;
        } else {
            well_formed &= b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
        }
        previous = b;
    }
    well_formed && previous != b'.' && dots > 0
}

impl EventDraft {
    /// A draft with no causation, schema or expectation.
    pub fn new(
        id: Uuid,
        event_type: impl Into<String>,
        subject: impl Into<String>,
        actor: impl Into<String>,
        correlation_id: impl Into<String>,
        data: Value,
    ) -> Self {
        Self {
            id,
            event_type: event_type.into(),
            subject: subject.into(),
            actor: actor.into(),
            correlation_id: correlation_id.into(),
            causation_id: None,
            data_schema: None,
            data,
            expected: ExpectedVersion::Any,
        }
    }

    /// Checks everything that does not depend on the log's state.
    ///
    /// # Errors
    /// [`InvalidDraft`] naming the first problem.
    pub fn validate(&self) -> Result<(), InvalidDraft> {
        self.validate_shape()?;
        canonical::check_numbers(&self.data)?;
        Ok(())
    }

    /// Everything [`EventDraft::validate`] checks except the payload's numbers.
    fn validate_shape(&self) -> Result<(), InvalidDraft> {
        validate_header(
            &self.event_type,
            &self.subject,
            &self.actor,
            &self.correlation_id,
            self.causation_id.as_deref(),
            self.data_schema.as_deref(),
        )?;
        if !self.data.is_object() {
            return Err(InvalidDraft::DataNotObject);
        }
        Ok(())
    }

    /// Checks the draft ([`EventDraft::validate`]) and encodes its payload canonically: the part
    /// of building an entry that needs no position in the log, so the appending caller's thread
    /// does it and the single writer only places the result.
    ///
    /// # Errors
    /// As [`EventDraft::validate`], and [`InvalidDraft::TooLarge`] when the payload alone is
    /// over the entry limit.
    pub(crate) fn prepare(self) -> Result<PreparedDraft, InvalidDraft> {
        self.validate_shape()?;
        // Encoding checks the number profile as it goes.
        let data_json = canonical::to_canonical_vec(&self.data)?;
        if data_json.len() > ENTRY_BYTES_MAX {
            return Err(InvalidDraft::TooLarge {
                bytes: data_json.len(),
                max: ENTRY_BYTES_MAX,
            });
        }
        Ok(PreparedDraft {
            draft: self,
            data_json,
        })
    }

    /// Whether `entry` records the same content as this draft (the idempotency comparison):
    /// everything the caller chose, none of what the writer assigned.
    pub fn same_content_as(&self, entry: &Entry) -> bool {
        self.event_type == entry.event_type
            && self.subject == entry.subject
            && self.actor == entry.actor
            && self.correlation_id == entry.correlation_id
            && self.causation_id == entry.causation_id
            && self.data_schema == entry.data_schema
            && self.data == *entry.data()
    }
}

/// The header rules every draft, and so every stored entry, obeys.
fn validate_header(
    event_type: &str,
    subject: &str,
    actor: &str,
    correlation_id: &str,
    causation_id: Option<&str>,
    data_schema: Option<&str>,
) -> Result<(), InvalidDraft> {
    check_type(event_type)?;
    check_token("subject", subject, SUBJECT_BYTES_MAX)?;
    check_token("actor", actor, TOKEN_BYTES_MAX)?;
    check_token("correlationid", correlation_id, TOKEN_BYTES_MAX)?;
    if let Some(c) = causation_id {
        check_token("causationid", c, TOKEN_BYTES_MAX)?;
    }
    if let Some(s) = data_schema {
        check_token("dataschema", s, URI_BYTES_MAX)?;
    }
    Ok(())
}

/// The attributes the writer assigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Global position, 0-based, contiguous.
    pub seq: u64,
    /// Position inside the subject's stream, 0-based.
    pub stream_version: u64,
    /// Event time, non-decreasing along the log.
    pub time: Timestamp,
    /// Hash of the previous entry ([`Digest::ZERO`] for seq 0).
    pub prev_hash: Digest,
}

/// A stored entry: its canonical bytes and the attributes decoded from them.
///
/// The payload is not decoded with the header: it stays JSON text inside the bytes
/// ([`Entry::data_json`]), which typed payload decoding reads directly, and becomes a
/// [`Value`] only when asked for ([`Entry::data`]). Building that tree for every entry read was
/// about half the cost of reading the log.
#[derive(Debug, Clone)]
pub struct Entry {
    bytes: Arc<[u8]>,
    /// Global position.
    pub seq: u64,
    /// Event id.
    pub id: Uuid,
    /// The log's origin.
    pub source: String,
    /// Event type.
    pub event_type: String,
    /// Event time.
    pub time: Timestamp,
    /// The stream.
    pub subject: String,
    /// Position inside the stream.
    pub stream_version: u64,
    /// Hash of the previous entry.
    pub prev_hash: Digest,
    /// The authenticated principal that caused it.
    pub actor: String,
    /// Correlation id.
    pub correlation_id: String,
    /// Causation id.
    pub causation_id: Option<String>,
    /// Payload schema URI.
    pub data_schema: Option<String>,
    /// Where the payload object's JSON text sits in `bytes`.
    data_at: std::ops::Range<usize>,
    /// The payload object, parsed on first use.
    data: std::sync::OnceLock<Value>,
}

/// Entries are their bytes: everything else is decoded from them (or built with them).
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Entry {}

/// Finds the `data` member's JSON text in an entry already known to be well-formed JSON with an
/// object `data` member.
fn locate_data(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    #[derive(Deserialize)]
    struct DataOnly<'a> {
        #[serde(borrow)]
        data: &'a serde_json::value::RawValue,
    }
    let found: DataOnly<'_> = serde_json::from_slice(bytes).ok()?;
    Some(range_within(bytes, found.data.get()))
}

/// The range `inner` (a sub-slice of `outer`, as serde's borrowed values are) occupies.
fn range_within(outer: &[u8], inner: &str) -> std::ops::Range<usize> {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    start..start + inner.len()
}

/// Why stored bytes are not a well-formed entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedEntry {
    /// Not canonical JSON under the profile.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// Not a JSON object.
    #[error("entry is not a JSON object")]
    NotObject,
    /// A required member is missing or has the wrong type or value.
    #[error("member {member:?}: {reason}")]
    Member {
        /// The member's name.
        member: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A member the format does not define.
    #[error("unknown member {0:?}")]
    UnknownMember(String),
    /// Over [`ENTRY_BYTES_MAX`].
    #[error("entry is {0} bytes, over the limit")]
    TooLarge(usize),
}

/// Every member an entry may have, in canonical order: the fast path matches names in this
/// order and takes a header apart by these places.
const KNOWN_MEMBERS: [&str; 15] = [
    "actor",
    "causationid",
    "correlationid",
    "data",
    "datacontenttype",
    "dataschema",
    "id",
    "prevhash",
    "seq",
    "source",
    "specversion",
    "streamversion",
    "subject",
    "time",
    "type",
];

/// An entry's header, borrowed from its stored bytes: what [`Entry::parse`] decodes, without
/// copying the bytes or the header's text. Verifying a store reads every entry's header once and
/// keeps none of them, so it decodes this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader<'a> {
    /// Global position.
    pub seq: u64,
    /// Event id.
    pub id: Uuid,
    /// The log's origin.
    pub source: Cow<'a, str>,
    /// Event type.
    pub event_type: Cow<'a, str>,
    /// Event time.
    pub time: Timestamp,
    /// The stream.
    pub subject: Cow<'a, str>,
    /// Position inside the stream.
    pub stream_version: u64,
    /// Hash of the previous entry.
    pub prev_hash: Digest,
    /// The authenticated principal that caused it.
    pub actor: Cow<'a, str>,
    /// Correlation id.
    pub correlation_id: Cow<'a, str>,
    /// Causation id.
    pub causation_id: Option<Cow<'a, str>>,
    /// Payload schema URI.
    pub data_schema: Option<Cow<'a, str>>,
    /// Where the payload object's JSON text sits in the bytes.
    pub data_at: std::ops::Range<usize>,
}

impl<'a> EntryHeader<'a> {
    /// Decodes and checks stored bytes exactly as [`Entry::parse`] does.
    ///
    /// # Errors
    /// [`MalformedEntry`] naming the first problem.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MalformedEntry> {
        if bytes.len() > ENTRY_BYTES_MAX {
            return Err(MalformedEntry::TooLarge(bytes.len()));
        }
        match Self::parse_fast(bytes) {
            Some(header) => Ok(header),
            None => Entry::parse_by_members(bytes).map(Self::owned),
        }
    }

    /// The header of an entry decoded by the reference path.
    fn owned(entry: Entry) -> Self {
        Self {
            seq: entry.seq,
            id: entry.id,
            source: Cow::Owned(entry.source),
            event_type: Cow::Owned(entry.event_type),
            time: entry.time,
            subject: Cow::Owned(entry.subject),
            stream_version: entry.stream_version,
            prev_hash: entry.prev_hash,
            actor: Cow::Owned(entry.actor),
            correlation_id: Cow::Owned(entry.correlation_id),
            causation_id: entry.causation_id.map(Cow::Owned),
            data_schema: entry.data_schema.map(Cow::Owned),
            data_at: entry.data_at,
        }
    }

    /// The fast half of parsing: `Some` only for an entry the member-by-member path
    /// ([`Entry::parse_by_members`], the reference) accepts, with the same fields. It reads the
    /// members' places off the canonical check's one pass over the bytes and decodes only the
    /// header's short values; anything unusual (a string with an escape, `null` for an optional
    /// member, any rule broken) is left to the reference, which says precisely what is wrong.
    fn parse_fast(bytes: &'a [u8]) -> Option<Self> {
        // Where each member's value is, and whether it is a string without escapes.
        let mut at: [Option<(std::ops::Range<usize>, bool)>; KNOWN_MEMBERS.len()] =
            Default::default();
        canonical::check_canonical_object_of_known_members(
            bytes,
            &KNOWN_MEMBERS,
            |slot, value, plain_text| at[slot] = Some((value, plain_text)),
        )?;
        // One check of the whole entry's UTF-8 (the canonical check validated it already, but
        // only this makes it a `str`): a dozen checks of the header's strings cost more.
        let entry_text = std::str::from_utf8(bytes).ok()?;
        let [actor, causation_id, correlation_id, data, data_content_type, data_schema, id, prev_hash, seq, source, spec_version, stream_version, subject, time, event_type] =
            at.map(|value| value.map(|(range, plain_text)| (&bytes[range], plain_text)));
        // A string without escapes is its own text.
        let text = |(raw, plain_text): (&'a [u8], bool)| -> Option<&'a str> {
            if !plain_text {
                return None;
            }
            let inner = &raw[1..raw.len() - 1];
            let start = inner.as_ptr() as usize - bytes.as_ptr() as usize;
            entry_text.get(start..start + inner.len())
        };
        let required = |value: Option<(&'a [u8], bool)>| value.and_then(text);
        let optional = |value: Option<(&'a [u8], bool)>| -> Option<Option<Cow<'a, str>>> {
            match value {
                None => Some(None),
                Some(value) => text(value).map(|t| Some(Cow::Borrowed(t))),
            }
        };
        // A canonical integer has no leading zero and at most 16 digits; a value that is not
        // all digits is of another type, or negative.
        let natural = |value: Option<(&'a [u8], bool)>| -> Option<u64> {
            let (digits, _) = value?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(
                digits
                    .iter()
                    .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
            )
        };
        if required(spec_version)? != "1.0" || required(data_content_type)? != "application/json" {
            return None;
        }
        let (data, _) = data?;
        if data[0] != b'{' {
            return None;
        }
        let header = Self {
            seq: natural(seq)?,
            id: parse_lowercase_uuid(required(id)?)?,
            source: Cow::Borrowed(required(source)?),
            event_type: Cow::Borrowed(required(event_type)?),
            time: Timestamp::parse(required(time)?).ok()?,
            subject: Cow::Borrowed(required(subject)?),
            stream_version: natural(stream_version)?,
            prev_hash: Digest::from_hex(required(prev_hash)?)?,
            actor: Cow::Borrowed(required(actor)?),
            correlation_id: Cow::Borrowed(required(correlation_id)?),
            causation_id: optional(causation_id)?,
            data_schema: optional(data_schema)?,
            data_at: {
                let start = data.as_ptr() as usize - bytes.as_ptr() as usize;
                start..start + data.len()
            },
        };
        validate_header(
            &header.event_type,
            &header.subject,
            &header.actor,
            &header.correlation_id,
            header.causation_id.as_deref(),
            header.data_schema.as_deref(),
        )
        .ok()?;
        Some(header)
    }

    /// The owned entry of `bytes`, whose header this is.
    fn into_entry(self, bytes: &[u8]) -> Entry {
        Entry {
            bytes: bytes.into(),
            seq: self.seq,
            id: self.id,
            source: self.source.into_owned(),
            event_type: self.event_type.into_owned(),
            time: self.time,
            subject: self.subject.into_owned(),
            stream_version: self.stream_version,
            prev_hash: self.prev_hash,
            actor: self.actor.into_owned(),
            correlation_id: self.correlation_id.into_owned(),
            causation_id: self.causation_id.map(Cow::into_owned),
            data_schema: self.data_schema.map(Cow::into_owned),
            data_at: self.data_at,
            data: std::sync::OnceLock::new(),
        }
    }
}

impl Entry {
    /// Builds the canonical entry for `draft` at `position` in the log with origin `source`.
    ///
    /// # Errors
    /// [`InvalidDraft`] if the draft is invalid or the entry would be too large.
    pub fn build(
        draft: &EventDraft,
        source: &str,
        position: Position,
    ) -> Result<Self, InvalidDraft> {
        Self::build_prepared(&draft.clone().prepare()?, source, position)
    }

    /// [`Entry::build`] for a prepared draft (the writer's hot path): the header members are
    /// written around the payload's canonical text in their canonical order (all member names
    /// are ASCII, so UTF-16 order is byte order), with no JSON tree built.
    ///
    /// # Errors
    /// [`InvalidDraft::TooLarge`] if the entry would be too large.
    pub(crate) fn build_prepared(
        prepared: &PreparedDraft,
        source: &str,
        position: Position,
    ) -> Result<Self, InvalidDraft> {
        let draft = &prepared.draft;
        for (member, number) in [
            ("seq", position.seq),
            ("streamversion", position.stream_version),
        ] {
            if number > canonical::INTEGER_MAGNITUDE_MAX {
                return Err(InvalidDraft::Data(CanonicalError::IntegerOutOfRange {
                    path: format!("/{member}"),
                    value: number.to_string(),
                }));
            }
        }
        let mut out = Vec::with_capacity(prepared.data_json.len() + 512);
        let member = |out: &mut Vec<u8>, name: &str| {
            out.push(if out.is_empty() { b'{' } else { b',' });
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        member(&mut out, "actor");
        canonical::write_string(&draft.actor, &mut out);
        if let Some(c) = &draft.causation_id {
            member(&mut out, "causationid");
            canonical::write_string(c, &mut out);
        }
        member(&mut out, "correlationid");
        canonical::write_string(&draft.correlation_id, &mut out);
        member(&mut out, "data");
        let data_start = out.len();
        out.extend_from_slice(&prepared.data_json);
        let data_at = data_start..out.len();
        member(&mut out, "datacontenttype");
        out.extend_from_slice(b"\"application/json\"");
        if let Some(schema) = &draft.data_schema {
            member(&mut out, "dataschema");
            canonical::write_string(schema, &mut out);
        }
        member(&mut out, "id");
        canonical::write_string(
            draft
                .id
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer()),
            &mut out,
        );
        member(&mut out, "prevhash");
        canonical::write_string(&position.prev_hash.to_hex(), &mut out);
        member(&mut out, "seq");
        out.extend_from_slice(position.seq.to_string().as_bytes());
        member(&mut out, "source");
        canonical::write_string(source, &mut out);
        member(&mut out, "specversion");
        out.extend_from_slice(b"\"1.0\"");
        member(&mut out, "streamversion");
        out.extend_from_slice(position.stream_version.to_string().as_bytes());
        member(&mut out, "subject");
        canonical::write_string(&draft.subject, &mut out);
        member(&mut out, "time");
        canonical::write_string(&position.time.to_string(), &mut out);
        member(&mut out, "type");
        canonical::write_string(&draft.event_type, &mut out);
        out.push(b'}');
        if out.len() > ENTRY_BYTES_MAX {
            return Err(InvalidDraft::TooLarge {
                bytes: out.len(),
                max: ENTRY_BYTES_MAX,
            });
        }
        Ok(Self {
            bytes: out.into(),
            seq: position.seq,
            id: draft.id,
            source: source.to_owned(),
            event_type: draft.event_type.clone(),
            time: position.time,
            subject: draft.subject.clone(),
            stream_version: position.stream_version,
            prev_hash: position.prev_hash,
            actor: draft.actor.clone(),
            correlation_id: draft.correlation_id.clone(),
            causation_id: draft.causation_id.clone(),
            data_schema: draft.data_schema.clone(),
            data_at,
            data: std::sync::OnceLock::new(),
        })
    }

    /// Decodes and checks stored bytes: canonical form, every required member, nothing unknown.
    ///
    /// # Errors
    /// [`MalformedEntry`] naming the first problem.
    pub fn parse(bytes: &[u8]) -> Result<Self, MalformedEntry> {
        if bytes.len() > ENTRY_BYTES_MAX {
            return Err(MalformedEntry::TooLarge(bytes.len()));
        }
        match EntryHeader::parse_fast(bytes) {
            Some(header) => Ok(header.into_entry(bytes)),
            None => Self::parse_by_members(bytes),
        }
    }

    /// The reference half of [`Entry::parse`]: member by member, naming the first problem.
    fn parse_by_members(bytes: &[u8]) -> Result<Self, MalformedEntry> {
        let Value::Object(mut map) = canonical::parse_canonical(bytes)? else {
            return Err(MalformedEntry::NotObject);
        };
        if let Some(unknown) = map.keys().find(|k| !KNOWN_MEMBERS.contains(&k.as_str())) {
            return Err(MalformedEntry::UnknownMember(unknown.clone()));
        }
        fn bad(member: &'static str, reason: &str) -> MalformedEntry {
            MalformedEntry::Member {
                member,
                reason: reason.to_owned(),
            }
        }
        let mut text = |member: &'static str| -> Result<Option<String>, MalformedEntry> {
            match map.remove(member) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(bad(member, "must be a string")),
            }
        };
        let required =
            |v: Option<String>, member: &'static str| v.ok_or_else(|| bad(member, "is missing"));
        let specversion = required(text("specversion")?, "specversion")?;
        if specversion != "1.0" {
            return Err(bad("specversion", "must be \"1.0\""));
        }
        let content_type = required(text("datacontenttype")?, "datacontenttype")?;
        if content_type != "application/json" {
            return Err(bad("datacontenttype", "must be \"application/json\""));
        }
        let id_text = required(text("id")?, "id")?;
        let id = Uuid::parse_str(&id_text)
            .ok()
            .filter(|u| u.hyphenated().to_string() == id_text)
            .ok_or_else(|| bad("id", "must be a lowercase hyphenated UUID"))?;
        let source = required(text("source")?, "source")?;
        let event_type = required(text("type")?, "type")?;
        let time_text = required(text("time")?, "time")?;
        let time = Timestamp::parse(&time_text).map_err(|e| bad("time", &e.to_string()))?;
        let subject = required(text("subject")?, "subject")?;
        let prev_text = required(text("prevhash")?, "prevhash")?;
        let prev_hash = Digest::from_hex(&prev_text)
            .ok_or_else(|| bad("prevhash", "must be 64 lowercase hex digits"))?;
        let actor = required(text("actor")?, "actor")?;
        let correlation_id = required(text("correlationid")?, "correlationid")?;
        let causation_id = text("causationid")?;
        let data_schema = text("dataschema")?;
        let mut number = |member: &'static str| -> Result<u64, MalformedEntry> {
            map.remove(member)
                .ok_or_else(|| bad(member, "is missing"))?
                .as_u64()
                .ok_or_else(|| bad(member, "must be a non-negative integer"))
        };
        let seq = number("seq")?;
        let stream_version = number("streamversion")?;
        let data = map
            .remove("data")
            .ok_or_else(|| bad("data", "is missing"))?;
        if !data.is_object() {
            return Err(bad("data", "must be an object"));
        }
        let entry = Self {
            bytes: bytes.into(),
            seq,
            id,
            source,
            event_type,
            time,
            subject,
            stream_version,
            prev_hash,
            actor,
            correlation_id,
            causation_id,
            data_schema,
            data_at: locate_data(bytes).ok_or_else(|| bad("data", "cannot be located"))?,
            data: std::sync::OnceLock::from(data),
        };
        // The header rules a writer enforces hold for every stored entry too. (The data's
        // numbers obey the profile: the bytes are canonical.)
        validate_header(
            &entry.event_type,
            &entry.subject,
            &entry.actor,
            &entry.correlation_id,
            entry.causation_id.as_deref(),
            entry.data_schema.as_deref(),
        )
        .map_err(|e| match e {
            InvalidDraft::Field { field, reason } => MalformedEntry::Member {
                member: field,
                reason,
            },
            other => bad("data", &other.to_string()),
        })?;
        Ok(entry)
    }

    /// The stored canonical bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The payload object (parsed from the bytes on first use, then kept).
    ///
    /// # Panics
    /// Never: the bytes were checked to hold a canonical object here when the entry was made.
    pub fn data(&self) -> &Value {
        self.data.get_or_init(|| {
            serde_json::from_slice(self.data_json()).expect("checked when the entry was made")
        })
    }

    /// The payload object's canonical JSON text, as stored.
    pub fn data_json(&self) -> &[u8] {
        &self.bytes[self.data_at.clone()]
    }

    /// [`Entry::data_json`] as text.
    ///
    /// # Panics
    /// Never: an entry's bytes are checked to be UTF-8 when it is made, and `data` is a whole
    /// JSON value inside them.
    pub fn data_text(&self) -> &str {
        std::str::from_utf8(self.data_json()).expect("entries are UTF-8")
    }

    /// The stored bytes, shared.
    pub fn shared_bytes(&self) -> Arc<[u8]> {
        Arc::clone(&self.bytes)
    }

    /// `SHA-256(bytes)`: the next entry's `prevhash`.
    pub fn hash(&self) -> Digest {
        Digest::of(&self.bytes)
    }

    /// The content the caller chose, as a draft (for comparisons and re-validation).
    pub fn as_draft(&self) -> EventDraft {
        EventDraft {
            id: self.id,
            event_type: self.event_type.clone(),
            subject: self.subject.clone(),
            actor: self.actor.clone(),
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id.clone(),
            data_schema: self.data_schema.clone(),
            data: self.data().clone(),
            expected: ExpectedVersion::Any,
        }
    }
}

#[cfg(test)]
mod tests;
