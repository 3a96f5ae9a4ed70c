//! Determinism and snapshots: the same log always folds to the same state (same fingerprint),
//! whether from genesis or from a snapshot plus the tail; a damaged snapshot is refused and rebuilt.

mod common;

use common::*;
use events::payloads::Severity;
use events::Clock as _;
use projections::policy::{Command, IncidentReport};
use projections::snapshot::{self, fingerprint};
use projections::state::DeploymentStatus;
use std::sync::Arc;
use trustledger::governance::{
    AsOf, Governance, IdSource, OpenedFrom, Principal, Role, SNAPSHOT_NAME,
};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const APPS: [(&str, bool); 6] = [
    ("PDF reader", false),
    ("Slack", false),
    ("SAP GUI", false),
    ("Antivirus", true),
    ("Zoom", false),
    ("Screen recorder", false),
];

/// A random history of `steps` commands (some refused, as in life) through the real service.
fn random_history(seed: u64, steps: u32) -> World {
    let w = world();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let reporter = Principal::new("irene", &[Role::IncidentReporter]);
    let operator = Principal::new("ops", &[Role::Operator]);
    for _ in 0..steps {
        w.clock
            .advance_micros(i64::try_from(rng.below(12 * 3_600_000_000)).unwrap());
        let deployments: Vec<_> = w.gov.with_state(|s| {
            s.deployments
                .iter()
                .map(|(id, d)| (*id, d.status))
                .collect()
        });
        let pick = |rng: &mut Rng, status: DeploymentStatus| {
            let matching: Vec<_> = deployments
                .iter()
                .filter(|(_, s)| *s == status)
                .map(|(id, _)| *id)
                .collect();
            (!matching.is_empty())
                .then(|| matching[usize::try_from(rng.below(matching.len() as u64)).unwrap()])
        };
        match rng.below(10) {
            0..=2 => {
                let (app, admin) = APPS[usize::try_from(rng.below(APPS.len() as u64)).unwrap()];
                w.submit(app, admin, 1 + rng.below(20_000));
            }
            3..=5 => {
                if let Some(id) = pick(&mut rng, DeploymentStatus::PendingCab) {
                    let _ = w.vote(
                        usize::try_from(rng.below(5)).unwrap(),
                        id,
                        rng.below(10) != 0,
                    );
                }
            }
            6 | 7 => {
                if let Some(id) = pick(&mut rng, DeploymentStatus::Approved) {
                    let artifact: &[u8] = if rng.below(20) == 0 {
                        b"swapped"
                    } else {
                        ARTIFACT
                    };
                    w.release(id, artifact, Some(SBOM)).unwrap();
                }
            }
            8 => {
                if let Some(id) = pick(&mut rng, DeploymentStatus::Released) {
                    let severity = [Severity::P1, Severity::P2, Severity::P3, Severity::P4]
                        [usize::try_from(rng.below(4)).unwrap()];
                    let report = IncidentReport {
                        incident_id: w.gov.new_id(),
                        deployment_id: id,
                        severity,
                        incident_date: w.clock.now(),
                        affected_user_count: rng.below(500),
                        downtime_minutes: rng.below(300),
                        business_impact_usd: format!(
                            "{}.{:02}",
                            rng.below(100_000),
                            rng.below(100)
                        ),
                        preventable: rng.below(2) == 0,
                        preventability_notes: String::new(),
                        control_improvements: vec![],
                    };
                    w.gov
                        .execute(&reporter, &Command::ReportIncident(report))
                        .unwrap();
                }
            }
            _ => {
                w.gov
                    .execute(
                        &operator,
                        &Command::EvaluateMaturity {
                            strict: rng.below(2) == 0,
                        },
                    )
                    .unwrap();
            }
        }
    }
    w
}

#[test]
fn random_histories_fold_to_the_same_fingerprint_twice_and_from_a_snapshot() {
    for seed in 1..=4u64 {
        let w = random_history(seed, 120);
        let live = w.gov.fingerprint();
        let refolded = w.gov.state_as_of(AsOf::Seq(u64::MAX)).unwrap();
        assert_eq!(
            (refolded.last_seq, fingerprint(&refolded)),
            live,
            "seed {seed}: a second fold differs"
        );

        let size = w.gov.log().head().size;
        let cut = size / 3 + seed;
        let at_cut = w.gov.state_as_of(AsOf::Seq(cut)).unwrap();
        w.gov
            .log()
            .put_snapshot(SNAPSHOT_NAME, &snapshot::seal(&at_cut, cut))
            .unwrap();
        let reopened = Governance::open(
            w.gov.log().clone(),
            Arc::new(w.clock.clone()),
            IdSource::Random,
        )
        .unwrap();
        assert_eq!(reopened.opened_from(), &OpenedFrom::Snapshot { seq: cut });
        assert_eq!(
            reopened.fingerprint(),
            live,
            "seed {seed}: snapshot + tail differs from a full fold"
        );
    }
}

#[test]
fn different_histories_have_different_fingerprints() {
    let a = random_history(11, 60).gov.fingerprint();
    let b = random_history(12, 60).gov.fingerprint();
    assert_ne!(a, b);
}

#[test]
fn damaged_or_foreign_snapshots_are_discarded_and_rebuilt() {
    let w = random_history(5, 80);
    let live = w.gov.fingerprint();
    w.gov.save_snapshot().unwrap();
    let sealed = w.gov.log().get_snapshot(SNAPSHOT_NAME).unwrap().unwrap();
    let reopen = || {
        Governance::open(
            w.gov.log().clone(),
            Arc::new(w.clock.clone()),
            IdSource::Random,
        )
        .unwrap()
    };

    let mut corrupt = sealed.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x40;
    let mut other_version = sealed.clone();
    other_version[11] ^= 0x02;
    for (bytes, why) in [
        (corrupt, "checksum"),
        (other_version, "projection version"),
        (b"garbage".to_vec(), "not a trustledger snapshot"),
    ] {
        w.gov.log().put_snapshot(SNAPSHOT_NAME, &bytes).unwrap();
        let g = reopen();
        match g.opened_from() {
            OpenedFrom::Rebuilt {
                discarded: Some(reason),
            } => assert!(reason.contains(why), "{reason}"),
            other => panic!("a bad snapshot was used: {other:?}"),
        }
        assert_eq!(g.fingerprint(), live);
    }
    w.gov.log().put_snapshot(SNAPSHOT_NAME, &sealed).unwrap();
    assert!(matches!(
        reopen().opened_from(),
        OpenedFrom::Snapshot { .. }
    ));
}
