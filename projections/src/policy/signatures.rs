//! Signature checks the policy makes, and the memo through which an auditor works them out ahead
//! of the re-derivation, on other threads: SBOM signatures (strict Ed25519 over a digest
//! statement), and SSH signatures of votes and evidence, verified in batches.

use super::*;

/// Whether `signature_hex` is a valid Ed25519 signature (strict verification) under
/// `public_key_hex` of the statement [`sbom_signing_message`] makes of `sbom_sha256_hex`. A pure
/// function of its three arguments; malformed hex is simply not a valid signature.
pub fn sbom_signature_verifies(
    public_key_hex: &str,
    signature_hex: &str,
    sbom_sha256_hex: &str,
) -> bool {
    let question = SignatureQuestion {
        public_key_hex: public_key_hex.to_owned(),
        signature_hex: signature_hex.to_owned(),
        sbom_sha256_hex: sbom_sha256_hex.to_owned(),
    };
    if let Some(answer) =
        SIGNATURE_MEMO.with(|memo| memo.borrow().as_ref().and_then(|memo| memo.take(&question)))
    {
        return answer;
    }
    question.answer()
}

/// One Ed25519 verification [`sbom_signature_verifies`] may be asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignatureQuestion {
    /// The signing key.
    pub public_key_hex: String,
    /// The signature.
    pub signature_hex: String,
    /// The SBOM digest the signed statement names.
    pub sbom_sha256_hex: String,
}

impl SignatureQuestion {
    /// Verifies, the expensive way (tens of microseconds).
    pub fn answer(&self) -> bool {
        let parsed = (|| {
            let public: [u8; 32] = hex::decode(&self.public_key_hex).ok()?.try_into().ok()?;
            let signature: [u8; 64] = hex::decode(&self.signature_hex).ok()?.try_into().ok()?;
            Some((
                verifying_key(public)?,
                ed25519_dalek::Signature::from_bytes(&signature),
            ))
        })();
        parsed.is_some_and(|(public, signature)| {
            public
                .verify_strict(&sbom_signing_message(&self.sbom_sha256_hex), &signature)
                .is_ok()
        })
    }
}

/// The decompressed key for `public`, or `None` if it is not a curve point. Kept per thread:
/// decompression is a field square root, a fifth of a verification, and a log's evidence is
/// signed by a handful of keys.
pub(crate) fn verifying_key(public: [u8; 32]) -> Option<ed25519_dalek::VerifyingKey> {
    /// Bounds the cache against a forged log naming a new key on every entry.
    const KEYS_KEPT: usize = 64;
    thread_local! {
        static KEYS: std::cell::RefCell<std::collections::HashMap<[u8; 32], ed25519_dalek::VerifyingKey>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    KEYS.with(|keys| {
        if let Some(key) = keys.borrow().get(&public) {
            return Some(*key);
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public).ok()?;
        let mut keys = keys.borrow_mut();
        if keys.len() >= KEYS_KEPT {
            keys.clear();
        }
        keys.insert(public, key);
        Some(key)
    })
}

/// Answers to [`SignatureQuestion`]s worked out ahead of time, on other threads, by a caller that
/// knows which ones the policy is about to ask (the auditor, which reads evidence before the
/// releases that use it). It only ever holds what [`SignatureQuestion::answer`] returned, so
/// consulting it changes no decision, only when the work is done.
#[derive(Debug, Default)]
pub struct SignatureMemo {
    sbom: std::sync::Mutex<std::collections::HashMap<SignatureQuestion, bool>>,
    /// SSH signatures (votes, evidence): (armored SSHSIG, signed bytes) → `Some` when it
    /// verifies under the key it names, in the namespace it was asked about.
    ssh: std::sync::Mutex<SshAnswers>,
}

impl SignatureMemo {
    /// Works out `question` now and keeps the answer for the policy.
    pub fn answer_ahead(&self, question: SignatureQuestion) {
        let answer = question.answer();
        if let Ok(mut answers) = self.sbom.lock() {
            answers.insert(question, answer);
        }
    }

    /// Works out now whether `sshsig` verifies over `signed` in `namespace` under the key it
    /// names, and keeps the answer for the policy (which still checks that key is the signer's).
    pub fn answer_ssh_ahead(&self, namespace: &str, sshsig: String, signed: Vec<u8>) {
        use ed25519_dalek::Verifier as _;
        let answer = crate::vote_statement::ed25519_check(namespace, &sshsig, &signed)
            .filter(|c| c.key.verify(&c.data, &c.signature).is_ok())
            .and_then(|c| c.verified_form);
        if let Ok(mut answers) = self.ssh.lock() {
            answers.insert((sshsig, signed), answer);
        }
    }

    /// Queues `sshsig` over `signed` in `namespace`, to be verified together with the others
    /// queued on this thread when [`SignatureMemo::answer_queued`] is called (or the queue is
    /// full), and its answer kept for the policy as [`SignatureMemo::answer_ssh_ahead`] keeps it.
    pub fn queue_ssh(&self, namespace: &str, sshsig: String, signed: Vec<u8>) {
        let check = crate::vote_statement::ed25519_check(namespace, &sshsig, &signed);
        self.queue(Queued {
            asked: Asked::Ssh(sshsig, signed),
            check,
            strict: false,
        });
    }

    /// Queues `question` as [`SignatureMemo::queue_ssh`] queues an SSH signature, for the answer
    /// [`SignatureMemo::answer_ahead`] would keep.
    pub fn queue_sbom(&self, question: SignatureQuestion) {
        let check = (|| {
            let public: [u8; 32] = hex::decode(&question.public_key_hex)
                .ok()?
                .try_into()
                .ok()?;
            let signature: [u8; 64] = hex::decode(&question.signature_hex).ok()?.try_into().ok()?;
            // Strict verification refuses a weak (small-order) key whatever the signature.
            let key = verifying_key(public).filter(|key| !key.is_weak())?;
            Some(crate::vote_statement::Ed25519Check {
                data: sbom_signing_message(&question.sbom_sha256_hex),
                signature: ed25519_dalek::Signature::from_bytes(&signature),
                key,
                verified_form: None,
            })
        })();
        self.queue(Queued {
            asked: Asked::Sbom(question),
            check,
            strict: true,
        });
    }

    fn queue(&self, queued: Queued) {
        let full = QUEUE.with(|queue| {
            let mut queue = queue.borrow_mut();
            queue.push(queued);
            queue.len() >= BATCH_MAX
        });
        if full {
            self.answer_queued();
        }
    }

    /// Verifies every signature queued on this thread as one batch, and keeps the answers.
    ///
    /// A batch that verifies answers each of its signatures `true`; one that does not is
    /// verified signature by signature, as the policy would. The batch equation is cofactored,
    /// so a signature whose own signer gave it a small-order component could pass in a batch
    /// and fail alone: only the key's holder can make one, who could as well have signed
    /// properly, and nobody else can make any signature pass either way.
    pub fn answer_queued(&self) {
        use ed25519_dalek::Verifier as _;
        let queued = QUEUE.with(|queue| std::mem::take(&mut *queue.borrow_mut()));
        if queued.is_empty() {
            return;
        }
        let checks: Vec<&crate::vote_statement::Ed25519Check> =
            queued.iter().filter_map(|q| q.check.as_ref()).collect();
        let messages: Vec<&[u8]> = checks.iter().map(|c| c.data.as_slice()).collect();
        let signatures: Vec<ed25519_dalek::Signature> =
            checks.iter().map(|c| c.signature).collect();
        let keys: Vec<ed25519_dalek::VerifyingKey> = checks.iter().map(|c| c.key).collect();
        let all_verify = ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok();
        for Queued {
            asked,
            check,
            strict,
        } in queued
        {
            let verified = check.filter(|c| {
                all_verify
                    || if strict {
                        c.key.verify_strict(&c.data, &c.signature).is_ok()
                    } else {
                        c.key.verify(&c.data, &c.signature).is_ok()
                    }
            });
            let answer = verified.is_some();
            match asked {
                Asked::Ssh(sshsig, signed) => {
                    if let Ok(mut answers) = self.ssh.lock() {
                        answers.insert((sshsig, signed), verified.and_then(|c| c.verified_form));
                    }
                }
                Asked::Sbom(question) => {
                    if let Ok(mut answers) = self.sbom.lock() {
                        answers.insert(question, answer);
                    }
                }
            }
        }
    }

    /// The kept answer, removed: each is asked for about once, so the memo stays small.
    fn take(&self, question: &SignatureQuestion) -> Option<bool> {
        self.sbom.lock().ok()?.remove(question)
    }

    fn take_ssh(
        &self,
        sshsig: &str,
        signed: &[u8],
    ) -> Option<Option<crate::vote_statement::VerifiedAhead>> {
        self.ssh
            .lock()
            .ok()?
            .remove(&(sshsig.to_owned(), signed.to_owned()))
    }

    /// Runs `f` with the policy on this thread consulting this memo.
    pub fn consulted_during<R>(self: &std::sync::Arc<Self>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<std::sync::Arc<SignatureMemo>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                SIGNATURE_MEMO.with(|memo| *memo.borrow_mut() = self.0.take());
            }
        }
        let _restore = Restore(SIGNATURE_MEMO.with(|memo| memo.replace(Some(self.clone()))));
        f()
    }
}

/// SSH signatures' answers: (armored SSHSIG, signed bytes) → `Some` when it verifies.
type SshAnswers =
    std::collections::HashMap<(String, Vec<u8>), Option<crate::vote_statement::VerifiedAhead>>;

/// Most signatures verified in one batch (a batch's gain levels off well before this).
const BATCH_MAX: usize = 256;

/// What a queued signature's answer is kept under.
enum Asked {
    /// An SSH signature: (armored SSHSIG, the bytes it signs).
    Ssh(String, Vec<u8>),
    /// An SBOM signature.
    Sbom(SignatureQuestion),
}

/// A signature queued for the next batch: its Ed25519 check (`None`: it cannot verify), and
/// whether it is verified strictly on its own (SBOM signatures are).
struct Queued {
    asked: Asked,
    check: Option<crate::vote_statement::Ed25519Check>,
    strict: bool,
}

thread_local! {
    /// Signatures queued on this thread for the next batch ([`SignatureMemo::queue_ssh`],
    /// [`SignatureMemo::queue_sbom`]).
    static QUEUE: std::cell::RefCell<Vec<Queued>> = const { std::cell::RefCell::new(Vec::new()) };
}

thread_local! {
    /// The memo [`SignatureMemo::consulted_during`] installed on this thread, if any. A
    /// thread-local rather than a parameter: it changes no result, and the policy's functions
    /// stay the pure `(state, command) -> decision` the service and the audit share.
    static SIGNATURE_MEMO: std::cell::RefCell<Option<std::sync::Arc<SignatureMemo>>> =
        const { std::cell::RefCell::new(None) };
}

/// An SSH signature's answer (a vote's, an evidence package's) worked out ahead on another
/// thread, if the memo installed on this thread has it: `Some(Some(_))` when it verifies.
pub(crate) fn ssh_answer_ahead(
    sshsig: &str,
    signed: &[u8],
) -> Option<Option<crate::vote_statement::VerifiedAhead>> {
    SIGNATURE_MEMO.with(|memo| {
        memo.borrow()
            .as_ref()
            .and_then(|memo| memo.take_ssh(sshsig, signed))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vote_statement::{key_from_label, NAMESPACE};
    use ssh_key::{HashAlg, LineEnding};

    fn signed(label: &str, message: &[u8]) -> String {
        key_from_label(label)
            .sign(NAMESPACE, HashAlg::Sha512, message)
            .unwrap()
            .to_pem(LineEnding::LF)
            .unwrap()
    }

    /// A batch answers exactly as signature-by-signature verification does, whether or not one
    /// of its signatures is bad.
    #[test]
    fn a_batch_answers_each_signature_as_verifying_it_alone_would() {
        for with_a_bad_one in [false, true] {
            let memo = SignatureMemo::default();
            let mut asked: Vec<(String, Vec<u8>)> = (0..6)
                .map(|n| {
                    let message = format!("statement {n}").into_bytes();
                    (signed(["chen", "ada"][n % 2], &message), message)
                })
                .collect();
            if with_a_bad_one {
                asked.push((asked[0].0.clone(), b"another statement".to_vec()));
                asked.push(("not a signature".into(), b"x".to_vec()));
            }
            let sbom_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
            let mut sboms: Vec<SignatureQuestion> = (0..3)
                .map(|n| {
                    let digest = format!("{n:064x}");
                    SignatureQuestion {
                        public_key_hex: hex::encode(sbom_key.verifying_key().as_bytes()),
                        signature_hex: hex::encode(
                            ed25519_dalek::Signer::sign(&sbom_key, &sbom_signing_message(&digest))
                                .to_bytes(),
                        ),
                        sbom_sha256_hex: digest,
                    }
                })
                .collect();
            if with_a_bad_one {
                sboms[1].sbom_sha256_hex = "f".repeat(64);
            }
            for (sshsig, message) in &asked {
                memo.queue_ssh(NAMESPACE, sshsig.clone(), message.clone());
            }
            for question in &sboms {
                memo.queue_sbom(question.clone());
            }
            memo.answer_queued();
            for (sshsig, message) in &asked {
                let alone =
                    crate::vote_statement::verifies_under_its_own_key(NAMESPACE, sshsig, message);
                let answer = memo.take_ssh(sshsig, message).map(|v| v.is_some());
                assert_eq!(answer, Some(alone));
            }
            for question in &sboms {
                assert_eq!(memo.take(question), Some(question.answer()));
            }
        }
    }
}
