//! The entry format's tests: building, parsing, and the fast header path held equal to the
//! reference one.

use super::*;
use proptest::prelude::*;
use serde_json::json;

#[test]
fn digests_parse_from_exactly_64_lowercase_hex_digits() {
    let text = "09afAF".to_lowercase().repeat(10) + "0f9a";
    assert_eq!(
        Digest::from_hex(&text).map(|d| d.to_hex()),
        Some(text.clone())
    );
    for bad in [
        text.to_uppercase(),
        format!("{}A", &text[..63]),
        format!("{}g", &text[..63]),
        format!("{} ", &text[..63]),
        text[..62].to_owned(),
        format!("{text}00"),
        String::new(),
    ] {
        assert_eq!(Digest::from_hex(&bad), None, "{bad}");
    }
}

proptest! {
    #[test]
    fn digests_parse_as_the_hex_crate_decodes_lowercase(bytes in proptest::array::uniform32(any::<u8>())) {
        let text = hex::encode(bytes);
        prop_assert_eq!(Digest::from_hex(&text), Some(Digest(bytes)));
        prop_assert_eq!(Digest::from_hex(&text.to_uppercase()).is_some(), !text.bytes().any(|b| b.is_ascii_alphabetic()));
    }

    /// Ids read as the reference reads them (parse any spelling, then require it to be the
    /// lowercase hyphenated one), on well-formed ids and on ids with any byte changed.
    #[test]
    fn ids_parse_as_the_uuid_crate_reads_lowercase_hyphenated_text(
        id in any::<u128>(),
        at in 0usize..36,
        byte in any::<u8>(),
    ) {
        let reference = |text: &str| {
            Uuid::parse_str(text)
                .ok()
                .filter(|u| u.hyphenated().to_string() == text)
        };
        let text = Uuid::from_u128(id).hyphenated().to_string();
        prop_assert_eq!(parse_lowercase_uuid(&text), Some(Uuid::from_u128(id)));
        let mut edited = text.into_bytes();
        edited[at] = byte;
        if let Ok(edited) = String::from_utf8(edited) {
            prop_assert_eq!(parse_lowercase_uuid(&edited), reference(&edited), "{}", edited);
        }
        let upper = Uuid::from_u128(id).hyphenated().to_string().to_uppercase();
        prop_assert_eq!(parse_lowercase_uuid(&upper), reference(&upper));
        let simple = Uuid::from_u128(id).simple().to_string();
        prop_assert_eq!(parse_lowercase_uuid(&simple), None);
    }

    /// Any byte but a lowercase hex digit, anywhere, is refused.
    #[test]
    fn digests_refuse_any_other_byte(at in 0usize..64, byte in any::<u8>()) {
        let mut text = "0123456789abcdef".repeat(4).into_bytes();
        text[at] = byte;
        let lowercase_hex = byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte);
        let parsed = std::str::from_utf8(&text).ok().and_then(Digest::from_hex);
        prop_assert_eq!(parsed.is_some(), lowercase_hex);
        prop_assert_eq!(lower_hex_digit(byte).is_some(), lowercase_hex);
    }
}

/// The entry as a JSON tree encoded by the general canonical encoder: the reference the
/// writer's direct encoding ([`Entry::build_prepared`]) must match byte for byte.
fn reference_bytes(draft: &EventDraft, source: &str, position: Position) -> Vec<u8> {
    let mut map = serde_json::Map::new();
    map.insert("specversion".into(), Value::from("1.0"));
    map.insert("id".into(), Value::from(draft.id.hyphenated().to_string()));
    map.insert("source".into(), Value::from(source));
    map.insert("type".into(), Value::from(draft.event_type.as_str()));
    map.insert("time".into(), Value::from(position.time.to_string()));
    map.insert("subject".into(), Value::from(draft.subject.as_str()));
    map.insert("datacontenttype".into(), Value::from("application/json"));
    if let Some(schema) = &draft.data_schema {
        map.insert("dataschema".into(), Value::from(schema.as_str()));
    }
    map.insert("data".into(), draft.data.clone());
    map.insert("seq".into(), Value::from(position.seq));
    map.insert("prevhash".into(), Value::from(position.prev_hash.to_hex()));
    map.insert("streamversion".into(), Value::from(position.stream_version));
    map.insert("actor".into(), Value::from(draft.actor.as_str()));
    map.insert(
        "correlationid".into(),
        Value::from(draft.correlation_id.as_str()),
    );
    if let Some(c) = &draft.causation_id {
        map.insert("causationid".into(), Value::from(c.as_str()));
    }
    canonical::to_canonical_vec(&Value::Object(map)).unwrap()
}

/// Header text (no control characters, as drafts require): with quotes, backslashes,
/// non-ASCII and astral characters.
fn header_text() -> impl Strategy<Value = String> {
    r#"[a-zA-Z0-9 "\\é€😀/._-]{1,24}"#
}

fn payload() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-(1i64 << 53) + 1..(1i64 << 53)).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        r#"[\x00-\x1f"\\\x7f]{0,4}"#.prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn the_writers_direct_encoding_is_the_canonical_encoding_of_the_entry(
        id in any::<u128>(),
        subject in header_text(),
        actor in header_text(),
        correlation in header_text(),
        causation in proptest::option::of(header_text()),
        schema in proptest::option::of(header_text()),
        members in prop::collection::btree_map("\\PC{0,6}", payload(), 0..5),
        seq in 0u64..(1 << 53),
        stream_version in 0u64..(1 << 53),
        micros in 0i64..4_102_444_800_000_000,
        prev in proptest::array::uniform32(any::<u8>()),
        source in header_text(),
    ) {
        let mut draft = EventDraft::new(
            Uuid::from_u128(id),
            "trustledger.test.encoded",
            subject,
            actor,
            correlation,
            Value::Object(members.into_iter().collect()),
        );
        draft.causation_id = causation;
        draft.data_schema = schema;
        let position = Position {
            seq,
            stream_version,
            time: Timestamp::from_unix_micros(micros),
            prev_hash: Digest(prev),
        };
        let built = Entry::build(&draft, &source, position).unwrap();
        let reference = reference_bytes(&draft, &source, position);
        prop_assert_eq!(
            String::from_utf8_lossy(built.bytes()),
            String::from_utf8_lossy(&reference)
        );
        // And it reads back as the same entry, payload where the writer said it is.
        let parsed = Entry::parse(built.bytes()).unwrap();
        prop_assert_eq!(parsed.data_json(), built.data_json());
        prop_assert_eq!(built.data(), &draft.data);
    }
}

fn well_formed() -> Value {
    json!({
        "actor": "alice",
        "causationid": "5a1d4c4e-6f1e-4a39-9c55-0c2f0b0c1e2d",
        "correlationid": "req-1",
        "data": {"approve": true, "n": 7, "why": "fine"},
        "datacontenttype": "application/json",
        "dataschema": "urn:trustledger:schema:cab.vote_cast:v1",
        "id": "0b7e2a43-8d5b-4f0e-9b7d-1f0a6f6d2c11",
        "prevhash": "ab".repeat(32),
        "seq": 12,
        "source": "trustledger.test/a",
        "specversion": "1.0",
        "streamversion": 3,
        "subject": "deployment/7",
        "time": "2026-02-10T09:00:00.000000Z",
        "type": "trustledger.cab.vote_cast"
    })
}

/// Both halves of `parse` give the same answer (the same entry, or the reference's error).
fn agree(bytes: &[u8]) {
    let reference = Entry::parse_by_members(bytes);
    assert_eq!(
        Entry::parse(bytes),
        reference,
        "{}",
        String::from_utf8_lossy(bytes)
    );
    // `parse` takes the fast path only for canonical bytes.
    // And decodes the same header, field by field (entries compare by their bytes alone).
    assert_eq!(
        EntryHeader::parse(bytes),
        Entry::parse_by_members(bytes).map(EntryHeader::owned)
    );
    if EntryHeader::parse_fast(bytes).is_some() {
        assert!(
            reference.is_ok(),
            "the fast path accepted what the reference refuses"
        );
    }
}

proptest! {
    /// The one-pass checks say what the obvious definitions say.
    #[test]
    fn token_and_type_checks_agree_with_their_definitions(value in "[a-z0-9_.\\x00-\\x20\\x7f\\u{80}-\\u{a0}é]{0,12}") {
        prop_assert_eq!(has_control_character(&value), value.chars().any(char::is_control));
        let words = value.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
        let reference = !value.is_empty()
            && !value.chars().any(char::is_control)
            && words
            && value.contains('.');
        prop_assert_eq!(check_type(&value).is_ok(), reference, "{:?}", value);
        // The same reason as ever: the token rules' first, then the format's.
        if let Err(error) = check_type(&value) {
            let expected = check_token("type", &value, TYPE_BYTES_MAX).err().unwrap_or(
                InvalidDraft::Field {
                    field: "type",
                    reason: "must be dot-separated words of [a-z0-9_], e.g. trustledger.deployment.submitted".to_owned(),
                },
            );
            prop_assert_eq!(error, expected);
        }
    }
}

#[test]
fn a_well_formed_type_over_the_limit_is_refused_for_its_length() {
    let longest = format!("a.{}", "b".repeat(TYPE_BYTES_MAX - 2));
    assert_eq!(check_type(&longest), Ok(()));
    let error = check_type(&format!("{longest}b")).unwrap_err();
    assert!(error.to_string().contains("over the limit"), "{error}");
}

#[test]
fn known_members_are_listed_in_canonical_order() {
    // The fast path matches names in this order and takes them apart by their places.
    assert!(KNOWN_MEMBERS.is_sorted(), "canonical order");
}

#[test]
fn the_fast_path_takes_well_formed_entries_and_agrees_with_the_reference() {
    let bytes = canonical::to_canonical_vec(&well_formed()).unwrap();
    assert!(
        EntryHeader::parse_fast(&bytes).is_some(),
        "the common case is fast"
    );
    agree(&bytes);
    let mut without_optionals = well_formed();
    let map = without_optionals.as_object_mut().unwrap();
    map.remove("causationid");
    map.remove("dataschema");
    let bytes = canonical::to_canonical_vec(&without_optionals).unwrap();
    assert!(EntryHeader::parse_fast(&bytes).is_some());
    agree(&bytes);
}

/// Every member missing, `null`, of another type or value, and an unknown member.
#[test]
fn members_changed_one_at_a_time_get_the_reference_answer() {
    let replacements = [
        Value::Null,
        json!(1),
        json!(-1),
        json!("x"),
        json!(""),
        json!({}),
        json!([]),
        json!(true),
        json!("0B7E2A43-8D5B-4F0E-9B7D-1F0A6F6D2C11"),
        json!("2026-02-10T09:00:00Z"),
        json!("AB".repeat(32)),
        json!("1.1"),
        json!("text/plain"),
        json!("not a type"),
        json!(9_007_199_254_740_991u64),
    ];
    let members: Vec<String> = well_formed().as_object().unwrap().keys().cloned().collect();
    for member in &members {
        let mut removed = well_formed();
        removed.as_object_mut().unwrap().remove(member);
        agree(&canonical::to_canonical_vec(&removed).unwrap());
        for replacement in &replacements {
            let mut changed = well_formed();
            changed[member.as_str()] = replacement.clone();
            agree(&canonical::to_canonical_vec(&changed).unwrap());
        }
    }
    let mut unknown = well_formed();
    unknown["extra"] = json!("x");
    agree(&canonical::to_canonical_vec(&unknown).unwrap());
}

/// The fast path matches member names where they stand: a name repeated, out of order, or
/// spelt almost like a known one gets the reference answer.
#[test]
fn members_repeated_reordered_or_misnamed_get_the_reference_answer() {
    let canon = |v: &Value| String::from_utf8(canonical::to_canonical_vec(v).unwrap()).unwrap();
    let members: Vec<(String, String)> = well_formed()
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), canon(value)))
        .collect();
    let object = |members: &[(String, String)]| {
        let inner: Vec<String> = members
            .iter()
            .map(|(name, value)| format!("\"{name}\":{value}"))
            .collect();
        format!("{{{}}}", inner.join(","))
    };
    agree(object(&members).as_bytes());
    assert!(Entry::parse(object(&members).as_bytes()).is_ok());
    for k in 0..members.len() {
        let mut repeated = members.clone();
        repeated.insert(k, members[k].clone());
        agree(object(&repeated).as_bytes());
        if k + 1 < members.len() {
            let mut swapped = members.clone();
            swapped.swap(k, k + 1);
            agree(object(&swapped).as_bytes());
        }
        let name = &members[k].0;
        let escaped_first = format!("\\u{:04x}{}", u32::from(name.as_bytes()[0]), &name[1..]);
        for misnamed in [
            format!("{name}s"),
            name[..name.len() - 1].to_owned(),
            name.to_uppercase(),
            escaped_first,
        ] {
            let mut changed = members.clone();
            changed[k].0 = misnamed;
            agree(object(&changed).as_bytes());
        }
    }
}

proptest! {
    /// Arbitrary byte edits, canonical or not, get the reference answer.
    #[test]
    fn edited_bytes_get_the_reference_answer(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0x20u8..0x7f), 1..4)
    ) {
        let mut bytes = canonical::to_canonical_vec(&well_formed()).unwrap();
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        agree(&bytes);
    }
}
