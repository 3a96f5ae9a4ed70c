//! C2SP `tlog-witness`: the `add-checkpoint` request a log sends a witness, and the checks a
//! witness makes before it cosigns, as pure functions (the HTTP sides are in the service).
//!
//! ```text
//! old <size the witness last cosigned>\n
//! <base64 consistency proof hash>\n   (zero to 63 lines)
//! \n
//! <the signed checkpoint>
//! ```

use crate::checkpoint::{Checkpoint, CheckpointError, NoteVerifier};
use crate::merkle::{empty_root, verify_consistency};
use crate::Digest;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// Most consistency proof lines a request may carry.
pub const PROOF_LINES_MAX: usize = 63;
/// Largest request body a witness reads: the largest note plus a full proof.
pub const REQUEST_BYTES_MAX: usize = crate::checkpoint::NOTE_BYTES_MAX + 64 * 64;
/// The media type of a 409 response's body (the witness's size).
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// An `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the witness last cosigned for this log, as the log believes.
    pub old_size: u64,
    /// Consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Digest>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

impl AddCheckpoint {
    /// The request body.
    pub fn to_body(&self) -> String {
        let mut body = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            body.push_str(&B64.encode(hash.0));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&self.checkpoint);
        body
    }

    /// Parses a request body.
    ///
    /// # Errors
    /// A [`Refusal::BadRequest`] saying what is malformed.
    pub fn parse(body: &str) -> Result<Self, Refusal> {
        let bad = |why: &str| Refusal::BadRequest(why.to_owned());
        let (old_line, mut rest) = body.split_once('\n').ok_or_else(|| bad("no old line"))?;
        let old = old_line
            .strip_prefix("old ")
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .filter(|d| *d == "0" || !d.starts_with('0'))
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| bad("the first line must be 'old <decimal size>'"))?;
        let mut proof = Vec::new();
        loop {
            let (line, after) = rest
                .split_once('\n')
                .ok_or_else(|| bad("no empty line before the checkpoint"))?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == PROOF_LINES_MAX {
                return Err(bad("more than 63 consistency proof lines"));
            }
            let raw: [u8; 32] = B64
                .decode(line)
                .ok()
                .and_then(|raw| raw.try_into().ok())
                .ok_or_else(|| bad("a proof line is not a base64 32-byte hash"))?;
            proof.push(Digest(raw));
        }
        Ok(Self {
            old_size: old,
            proof,
            checkpoint: rest.to_owned(),
        })
    }
}

/// Why a witness does not cosign, with the HTTP status the protocol gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: malformed, or an old size beyond the checkpoint.
    #[error("{0}")]
    BadRequest(String),
    /// 403: no valid signature by a key the witness trusts for the origin.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the witness does not know the origin.
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    /// 409: the old size is not the size the witness last cosigned.
    #[error("the witness's latest cosigned size for this log is {0}")]
    Conflict(u64),
    /// 422: the checkpoint is not consistent with what the witness holds.
    #[error("{0}")]
    Inconsistent(String),
}

impl Refusal {
    /// The HTTP status code the protocol assigns.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Forbidden(_) => 403,
            Self::UnknownOrigin(_) => 404,
            Self::Conflict(_) => 409,
            Self::Inconsistent(_) => 422,
        }
    }
}

/// The tree head a witness last cosigned for a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// Its size.
    pub size: u64,
    /// Its root.
    pub root: Digest,
}

/// The origin a request's checkpoint names (so the witness can look up its key and state).
///
/// # Errors
/// [`Refusal::BadRequest`] when there is no origin line.
pub fn origin_of(request: &AddCheckpoint) -> Result<&str, Refusal> {
    request
        .checkpoint
        .split_once('\n')
        .map(|(origin, _)| origin)
        .filter(|o| !o.is_empty())
        .ok_or_else(|| Refusal::BadRequest("the checkpoint has no origin line".into()))
}

/// The witness's checks, in the order the spec gives them: the log's signature, the old size,
/// the empty tree, and consistency with the tree head it holds (`latest`, `None` for a log it
/// never cosigned). On success the checkpoint is the witness's new tree head for the log.
///
/// # Errors
/// The [`Refusal`] to answer with.
pub fn check(
    request: &AddCheckpoint,
    log_key: &NoteVerifier,
    latest: Option<TreeHead>,
) -> Result<Checkpoint, Refusal> {
    let checkpoint = Checkpoint::verify(&request.checkpoint, log_key).map_err(|e| match e {
        CheckpointError::MalformedNote(_) | CheckpointError::MalformedCheckpoint(_) => {
            Refusal::BadRequest(e.to_string())
        }
        _ => Refusal::Forbidden(e.to_string()),
    })?;
    if request.old_size > checkpoint.size {
        return Err(Refusal::BadRequest(format!(
            "old size {} is beyond the checkpoint's size {}",
            request.old_size, checkpoint.size
        )));
    }
    let held = latest.map_or(0, |h| h.size);
    if request.old_size != held {
        return Err(Refusal::Conflict(held));
    }
    if checkpoint.size == 0 && checkpoint.root != empty_root() {
        return Err(Refusal::Inconsistent(
            "a checkpoint of size 0 must have the empty tree's root".into(),
        ));
    }
    match latest {
        None if !request.proof.is_empty() => Err(Refusal::Inconsistent(
            "a proof from size 0 must be empty".into(),
        )),
        None => Ok(checkpoint),
        Some(head) => verify_consistency(
            head.size,
            checkpoint.size,
            &head.root,
            &checkpoint.root,
            &request.proof,
        )
        .map(|()| checkpoint)
        .map_err(|e| {
            Refusal::Inconsistent(format!(
                "not consistent with the tree of size {} the witness holds: {e}",
                head.size
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::NoteSigner;
    use crate::merkle::{consistency_proof, MemoryTree};

    struct Fixture {
        log: NoteSigner,
        tree: MemoryTree,
    }

    impl Fixture {
        fn new(entries: u64) -> Self {
            let mut tree = MemoryTree::new();
            for i in 0..entries {
                tree.push_entry(format!("entry {i}").as_bytes());
            }
            Self {
                log: NoteSigner::from_seed("example.com/log", [1; 32]).unwrap(),
                tree,
            }
        }

        fn request(&self, old: u64, size: u64) -> AddCheckpoint {
            let cp = Checkpoint {
                origin: "example.com/log".into(),
                size,
                root: crate::merkle::root(&self.tree, size).unwrap(),
            };
            AddCheckpoint {
                old_size: old,
                proof: if old == 0 {
                    vec![]
                } else {
                    consistency_proof(&self.tree, old, size).unwrap()
                },
                checkpoint: cp.sign(&self.log),
            }
        }

        fn head(&self, size: u64) -> TreeHead {
            TreeHead {
                size,
                root: crate::merkle::root(&self.tree, size).unwrap(),
            }
        }
    }

    #[test]
    fn the_specs_example_request_parses_and_round_trips() {
        let body = "old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
        let request = AddCheckpoint::parse(body).unwrap();
        assert_eq!(request.old_size, 20_852_014);
        assert_eq!(request.proof.len(), 4);
        assert_eq!(origin_of(&request).unwrap(), "example.com/behind-the-sofa");
        assert_eq!(request.to_body(), body);
        for bad in [
            "",
            "old 01\n\nx",
            "old -1\n\nx",
            "old 1\nnot base64\n\nx",
            "old 1\nAAAA\n\nx",
            "new 1\n\nx",
            "old 1\n",
        ] {
            assert!(
                matches!(AddCheckpoint::parse(bad), Err(Refusal::BadRequest(_))),
                "{bad:?}"
            );
        }
        let too_long = format!(
            "old 1\n{}\nx",
            "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n".repeat(64)
        );
        assert!(AddCheckpoint::parse(&too_long).is_err());
    }

    #[test]
    fn a_witness_cosigns_what_extends_its_head_and_refuses_rollbacks_and_forks() {
        let f = Fixture::new(20);
        let key = f.log.verifier();
        assert_eq!(check(&f.request(0, 7), &key, None).unwrap().size, 7);
        assert_eq!(
            check(&f.request(7, 20), &key, Some(f.head(7)))
                .unwrap()
                .size,
            20
        );
        assert!(check(&f.request(20, 20), &key, Some(f.head(20))).is_ok());
        // A stale old size is a conflict that names the witness's size.
        assert_eq!(
            check(&f.request(7, 20), &key, Some(f.head(12))),
            Err(Refusal::Conflict(12))
        );
        assert_eq!(
            check(&f.request(0, 20), &key, Some(f.head(12))),
            Err(Refusal::Conflict(12))
        );
        // A rollback: a checkpoint smaller than the head is refused.
        let rollback = AddCheckpoint {
            old_size: 12,
            ..f.request(0, 7)
        };
        assert_eq!(
            check(&rollback, &key, Some(f.head(12)))
                .unwrap_err()
                .status(),
            400
        );
        let rollback_as_new = f.request(0, 7);
        assert_eq!(
            check(&rollback_as_new, &key, Some(f.head(12))),
            Err(Refusal::Conflict(12))
        );
        // A fork: another history of the same log (entry 3 changed), signed with the log key.
        let mut forked = Fixture::new(0);
        for i in 0..25 {
            let bytes = if i == 3 {
                b"changed".to_vec()
            } else {
                format!("entry {i}").into_bytes()
            };
            forked.tree.push_entry(&bytes);
        }
        assert_eq!(
            check(&forked.request(7, 25), &key, Some(f.head(7)))
                .unwrap_err()
                .status(),
            422
        );
        let same_size_other_root = forked.request(0, 12);
        assert_eq!(
            check(
                &AddCheckpoint {
                    old_size: 12,
                    proof: vec![],
                    ..same_size_other_root
                },
                &key,
                Some(f.head(12))
            )
            .unwrap_err()
            .status(),
            422
        );
        // A proof from nothing must be empty.
        let mut padded = f.request(0, 7);
        padded.proof.push(Digest([0; 32]));
        assert_eq!(check(&padded, &key, None).unwrap_err().status(), 422);
    }

    #[test]
    fn only_the_logs_key_is_trusted() {
        let f = Fixture::new(4);
        let other = NoteSigner::from_seed("example.com/log", [9; 32]).unwrap();
        assert_eq!(
            check(&f.request(0, 4), &other.verifier(), None)
                .unwrap_err()
                .status(),
            403
        );
        let mut edited = f.request(0, 4);
        edited.checkpoint = edited.checkpoint.replacen("\n4\n", "\n5\n", 1);
        assert_eq!(
            check(&edited, &f.log.verifier(), None)
                .unwrap_err()
                .status(),
            403
        );
        let empty = Checkpoint {
            origin: "example.com/log".into(),
            size: 0,
            root: Digest([1; 32]),
        };
        let request = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: empty.sign(&f.log),
        };
        assert_eq!(
            check(&request, &f.log.verifier(), None)
                .unwrap_err()
                .status(),
            422
        );
    }
}
