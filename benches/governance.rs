//! Governance benchmarks, each beside its floor in the same run.
//!
//! - `release_gate/*`: the whole release gate for one approved deployment, artifact hashing
//!   excluded: the policy's checks alone, and checks + the durable append of the verdict
//!   (beside one `fdatasync`, the floor of any durable decision).
//! - `artifact_hashing/*`: `digest_stream` (256 KiB chunks, never buffering the artifact) vs
//!   SHA-256 over the same 64 MiB already in memory.
//!
//! Run: `cargo bench --bench governance`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::Signer as _;
use events::payloads::*;
use events::{Clock as _, Durability, Log, LogConfig, ManualClock, Timestamp};
use projections::policy::{self, Command, PresentedRelease, SubmitDeployment};
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

fn setup(durability: Durability) -> Setup {
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
    let gov = Governance::open(log, Arc::new(clock.clone()), IdSource::Seeded(1)).unwrap();
    let admin = Principal::new("ada", &[Role::Admin]);
    gov.execute(
        &admin,
        &Command::AddCabMember {
            member: "carol".into(),
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
    };
    gov.execute(
        &dev,
        &Command::RecordEvidence {
            evidence_id,
            document,
        },
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

impl Setup {
    /// A freshly submitted and approved deployment (not timed).
    fn approved(&self) -> PresentedRelease {
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
        self.gov
            .execute(
                &self.cab,
                &Command::Vote {
                    deployment_id: id,
                    approve: true,
                    rationale: "ok".into(),
                },
            )
            .unwrap();
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
    let s = setup(Durability::Fsync);
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

criterion_group!(benches, release_gate, artifact_hashing);
criterion_main!(benches);
