//! Governance benchmarks, each beside its floor in the same run.
//!
//! - `release_gate/*`: the whole release gate for one approved deployment, artifact hashing
//!   excluded: the policy's checks alone, and checks + the durable append of the verdict
//!   (beside one `fdatasync`, the floor of any durable decision).
//! - `cab_vote/*`: a CAB vote decided and durably appended, signed (SSHSIG verified under the
//!   member's key) and unsigned, on a log that accepts both (one begun before signed votes were
//!   required): what the signature check adds to a vote's latency.
//! - `artifact_hashing/*`: `digest_stream` (256 KiB chunks, never buffering the artifact) vs
//!   SHA-256 over the same 64 MiB already in memory.
//!
//! Run: `cargo bench --bench governance`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::Signer as _;
use events::payloads::*;
use events::{Clock as _, Durability, Log, LogConfig, ManualClock, Timestamp};
use projections::genesis;
use projections::policy::{self, Command, PresentedRelease, SubmitDeployment};
use projections::vote_statement;
use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;
use trustledger::governance::{digest_stream, Governance, IdSource, Principal, Role};

const ARTIFACT: &[u8] = b"installer bytes";
const SBOM: &[u8] = b"{\"bomFormat\":\"CycloneDX\"}";

fn hex_sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct Setup {
    gov: Governance,
    clock: ManualClock,
    dev: Principal,
    cab: Principal,
    agent: Principal,
    n: std::cell::Cell<u64>,
    _dir: tempfile::TempDir,
}

/// `signed_votes`: `false` begins the log the way logs were begun before votes were signed
/// (genesis without `cab.signed_votes_required`), so that unsigned votes are accepted too.
fn setup(durability: Durability, signed_votes: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::parse("2026-02-10T09:00:00.000000Z").unwrap());
    let log = Log::open(
        dir.path(),
        LogConfig {
            durability,
            clock: Arc::new(clock.clone()),
            ..LogConfig::default()
        },
    )
    .unwrap();
    if !signed_votes {
        let drafts = genesis::genesis_events()
            .iter()
            .filter(|(_, p)| {
                !matches!(
                    p,
                    Payload::SignedVotesRequired(_) | Payload::SignedEvidenceRequired(_)
                )
            })
            .enumerate()
            .map(|(k, (subject, payload))| {
                payload.to_draft(
                    uuid::Uuid::from_u128(k as u128 + 1),
                    subject,
                    genesis::GENESIS_ACTOR,
                    "genesis",
                )
            })
            .collect();
        log.append_batch_blocking(drafts).unwrap();
    }
    let gov = Governance::open(log, Arc::new(clock.clone()), IdSource::Seeded(1)).unwrap();
    let admin = Principal::new("ada", &[Role::Admin]);
    gov.execute(
        &admin,
        &Command::AddCabMember {
            member: "carol".into(),
            ssh_key: Some(carols_key().public_key().to_openssh().unwrap()),
        },
    )
    .unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    gov.execute(
        &admin,
        &Command::TrustSigningKey(SigningKeyTrusted {
            key_id: "k".into(),
            public_key_hex: hex::encode(key.verifying_key().as_bytes()),
            owner: "ci".into(),
        }),
    )
    .unwrap();
    let dev = Principal::new("dev", &[Role::Submitter]);
    let evidence_id = gov.new_id();
    let document = EvidenceDocument {
        artifacts: vec![Artifact {
            name: "a.msi".into(),
            sha256: hex_sha(ARTIFACT),
            size: ARTIFACT.len() as u64,
        }],
        sbom: Some(Sbom {
            format: "CycloneDX-1.5".into(),
            sha256: hex_sha(SBOM),
            signature: Some(SbomSignature {
                key_id: "k".into(),
                signature_hex: hex::encode(
                    key.sign(&sbom_signing_message(&hex_sha(SBOM))).to_bytes(),
                ),
            }),
        }),
        tests_passed: 10,
        tests_failed: 0,
        scan_critical_findings: 0,
        generated_by: "ci".into(),
        packaged_by: "pkg".into(),
        requires_admin: Some(false),
    };
    gov.execute(&admin, &policy::set_producer_by_label("ci"))
        .unwrap();
    gov.execute(
        &dev,
        &policy::record_evidence_signed_by_label(evidence_id, document),
    )
    .unwrap();
    Setup {
        gov,
        clock,
        dev,
        cab: Principal::new("carol", &[Role::Cab]),
        agent: Principal::new("agent", &[Role::Deployer]),
        n: std::cell::Cell::new(0),
        _dir: dir,
    }
}

fn carols_key() -> ssh_key::PrivateKey {
    vote_statement::key_from_label("carol")
}

impl Setup {
    /// A freshly submitted deployment waiting for the CAB (not timed).
    fn pending(&self) -> uuid::Uuid {
        self.n.set(self.n.get() + 1);
        let evidence_id = *self
            .gov
            .with_state(|s| s.evidence.iter().next().map(|(id, _)| id))
            .as_ref()
            .unwrap();
        let id = self.gov.new_id();
        let request = SubmitDeployment {
            correlation_id: format!("c{}", self.n.get()),
            app_name: "PDF reader".into(),
            app_version: "1".into(),
            requires_admin: false,
            target_user_count: 5,
            cmdb: Default::default(),
            evidence_id,
        };
        self.gov
            .execute(
                &self.dev,
                &Command::Submit {
                    deployment_id: id,
                    request,
                },
            )
            .unwrap();
        id
    }

    /// Carol's approval of `id`, signed or not.
    fn vote(&self, id: uuid::Uuid, signed: bool) -> Command {
        let at = self.gov.current_time();
        let subject = id.to_string();
        let signature = signed.then(|| {
            self.gov
                .with_state(|s| {
                    policy::sign_vote(
                        s,
                        &carols_key(),
                        (vote_statement::Kind::Deployment, &subject),
                        (true, "ok"),
                        at,
                    )
                })
                .unwrap()
        });
        Command::Vote {
            deployment_id: id,
            approve: true,
            rationale: "ok".into(),
            signature,
        }
    }

    /// A freshly submitted and approved deployment (not timed).
    fn approved(&self) -> PresentedRelease {
        let id = self.pending();
        self.gov.execute(&self.cab, &self.vote(id, true)).unwrap();
        PresentedRelease {
            deployment_id: id,
            artifact_sha256: hex_sha(ARTIFACT),
            artifact_size: ARTIFACT.len() as u64,
            sbom_sha256: Some(hex_sha(SBOM)),
        }
    }
}

fn release_gate(c: &mut Criterion) {
    let mut group = c.benchmark_group("release_gate");
    group
        .sample_size(100)
        .measurement_time(Duration::from_secs(8));
    let s = setup(Durability::Fsync, true);
    let presented = s.approved();
    let state = s.gov.state();
    let at = s.clock.now();
    group.bench_function("checks_only", |b| {
        b.iter(|| {
            policy::decide(&state, "agent", at, &Command::Release(presented.clone())).unwrap()
        });
    });
    group.bench_function("checks_and_durable_append", |b| {
        b.iter_batched(
            || s.approved(),
            |p| s.gov.execute(&s.agent, &Command::Release(p)).unwrap(),
            BatchSize::PerIteration,
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let mut file = std::fs::File::create(dir.path().join("floor")).unwrap();
    group.bench_function("floor_fdatasync_512_bytes", |b| {
        b.iter(|| {
            file.write_all(&[b'x'; 512]).unwrap();
            file.sync_data().unwrap();
        });
    });
    group.finish();
}

fn cab_vote(c: &mut Criterion) {
    let mut group = c.benchmark_group("cab_vote");
    group
        .sample_size(100)
        .measurement_time(Duration::from_secs(8));
    let s = setup(Durability::Fsync, false);
    for signed in [false, true] {
        let name = if signed { "signed" } else { "unsigned" };
        let id = s.pending();
        let vote = s.vote(id, signed);
        let state = s.gov.state();
        let at = s.gov.current_time();
        group.bench_function(format!("{name}_decide_only"), |b| {
            b.iter(|| policy::decide(&state, "carol", at, &vote).unwrap());
        });
        group.bench_function(format!("{name}_decided_and_durable"), |b| {
            b.iter_batched(
                || {
                    let id = s.pending();
                    s.vote(id, signed)
                },
                |vote| s.gov.execute(&s.cab, &vote).unwrap(),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn artifact_hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("artifact_hashing");
    let data: Vec<u8> = (0..64u32 * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    group
        .sample_size(10)
        .throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("digest_stream_64MiB", |b| {
        b.iter(|| digest_stream(&data[..], u64::MAX).unwrap())
    });
    group.bench_function("floor_sha256_64MiB_in_memory", |b| {
        b.iter(|| Sha256::digest(&data))
    });
    group.finish();
}

criterion_group!(benches, release_gate, cab_vote, artifact_hashing);
criterion_main!(benches);
