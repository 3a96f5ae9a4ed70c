//! Schema evolution: an entry written with an old payload version decodes forever, by upcasting,
//! without its stored bytes ever being rewritten.

use events::catalogue::{self, access::AccessGranted, DecodeError};
use events::Entry;

const V1_ENTRY: &[u8] = include_bytes!("data/access_granted_v1.json");

#[test]
fn a_v1_access_grant_decodes_as_the_current_shape() {
    let entry =
        Entry::parse(V1_ENTRY).expect("the kept v1 entry is still a valid, canonical entry");
    assert_eq!(
        entry.data_schema.as_deref(),
        Some("urn:trustledger:schema:access.granted:v1")
    );
    let grant: AccessGranted = catalogue::decode(&entry).unwrap();
    assert_eq!(grant.principal, "dave");
    assert_eq!(grant.roles, vec!["auditor".to_owned()]);
    assert_eq!(
        entry.bytes(),
        V1_ENTRY,
        "decoding never changes the stored bytes"
    );
}

#[test]
fn current_drafts_carry_the_current_schema_and_unknown_versions_are_refused() {
    let grant = AccessGranted {
        principal: "erin".into(),
        roles: vec!["cab".into()],
        token_sha256: "00".repeat(32),
    };
    let draft =
        catalogue::draft(uuid::Uuid::nil(), "principal/erin", "admin", "c", &grant).unwrap();
    assert_eq!(draft.event_type, "trustledger.access.granted");
    assert_eq!(
        draft.data_schema.as_deref(),
        Some("urn:trustledger:schema:access.granted:v2")
    );

    let future = std::str::from_utf8(V1_ENTRY)
        .unwrap()
        .replace("access.granted:v1", "access.granted:v3");
    let entry = Entry::parse(future.as_bytes()).unwrap();
    assert!(matches!(
        catalogue::decode::<AccessGranted>(&entry),
        Err(DecodeError::UnsupportedSchema(_))
    ));
    let other = std::str::from_utf8(V1_ENTRY)
        .unwrap()
        .replace("trustledger.access.granted", "trustledger.access.revoked");
    let entry = Entry::parse(other.as_bytes()).unwrap();
    assert!(matches!(
        catalogue::decode::<AccessGranted>(&entry),
        Err(DecodeError::WrongType { .. })
    ));
}

/// Current-version payloads are decoded straight from the stored text; the message recorded for
/// one that does not fit its type (folds keep it in the projection) must read as it did when
/// payloads were decoded from a parsed tree: no " at line 1 column N".
#[test]
fn a_payload_of_the_wrong_shape_gets_the_same_message_from_text_as_from_a_tree() {
    let cases = [
        // v2 of access.granted has `roles`, not `role`: a missing field, an unknown field.
        ("\"role\":\"auditor\"", "\"roles\":[\"cab\"],\"zzz\":1"),
        ("\"role\":\"auditor\"", "\"roles\":\"cab\""),
        ("\"role\":\"auditor\"", "\"roles\":[7]"),
        ("\"role\":\"auditor\"", "\"rolez\":[\"cab\"]"),
    ];
    for (from, to) in cases {
        let text = std::str::from_utf8(V1_ENTRY)
            .unwrap()
            .replace("access.granted:v1", "access.granted:v2")
            .replace(from, to);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let entry = Entry::parse(&events::canonical::to_canonical_vec(&value).unwrap()).unwrap();
        let Err(DecodeError::Shape(message)) = catalogue::decode::<AccessGranted>(&entry) else {
            panic!("{to} decoded");
        };
        let from_tree = serde_json::from_value::<AccessGranted>(entry.data().clone()).unwrap_err();
        assert_eq!(message, from_tree.to_string(), "{to}");
        assert!(!message.contains(" at line "), "{message}");
    }
}

/// Votes, members and submissions recorded before signed votes and the registry (v1) decode as
/// the current shape without the members added since.
#[test]
fn v1_votes_and_members_decode_without_their_new_members() {
    use events::payloads::{CabMemberAdded, CabVoteCast, VoteTarget};
    use events::{Digest, Position, Timestamp};
    fn as_v1<P: catalogue::EventPayload>(payload: &P, name: &str) -> Entry {
        let mut draft = catalogue::draft(uuid::Uuid::nil(), "s", "carol", "c", payload).unwrap();
        draft.data_schema = Some(catalogue::schema_uri(name, 1));
        let position = Position {
            seq: 0,
            stream_version: 0,
            time: Timestamp::parse("2026-01-01T00:00:00.000000Z").unwrap(),
            prev_hash: Digest::ZERO,
        };
        Entry::build(&draft, "test.example/log", position).unwrap()
    }
    let vote = CabVoteCast {
        target: VoteTarget::RiskModel {
            version: "1.2".into(),
        },
        approve: true,
        rationale: "ok".into(),
        signature: None,
        passkey_signature: None,
    };
    let decoded: CabVoteCast = catalogue::decode(&as_v1(&vote, "cab.vote_cast")).unwrap();
    assert_eq!(decoded, vote);
    let member = CabMemberAdded {
        member: "carol".into(),
        ssh_key: None,
    };
    let decoded: CabMemberAdded = catalogue::decode(&as_v1(&member, "cab.member_added")).unwrap();
    assert_eq!(decoded, member);
    let mut v0 = as_v1(&member, "cab.member_added");
    v0.data_schema = Some(catalogue::schema_uri("cab.member_added", 0));
    assert!(catalogue::decode::<CabMemberAdded>(&v0).is_err());
}
