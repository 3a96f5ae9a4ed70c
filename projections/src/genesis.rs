//! The configuration a new log starts with (the seed's "Feb 10 configuration"): risk model v1.1
//! GREENFIELD_CONSERVATIVE (every threshold 0), the four blast-radius classes with quorum
//! 3/2/1/1 and their classification rules, maturity levels 0–4 from the seed's table, signed
//! votes required, and the application registry's first entries.
//! All of it is data that later CAB-governed events can change.

use events::payloads::*;
use std::collections::BTreeMap;

/// The principal recorded as the actor of the genesis entries.
pub const GENESIS_ACTOR: &str = "system:genesis";

fn thresholds(values: [u32; 4]) -> BTreeMap<BlastRadiusClass, u32> {
    // Order: CRITICAL, BUSINESS, PRODUCTIVITY, NON (as the seed's tables list them).
    [
        BlastRadiusClass::CriticalInfrastructure,
        BlastRadiusClass::BusinessCritical,
        BlastRadiusClass::ProductivityTools,
        BlastRadiusClass::NonCritical,
    ]
    .into_iter()
    .zip(values)
    .collect()
}

/// Risk model v1.1.
pub fn risk_model_v1_1() -> RiskModelProposed {
    RiskModelProposed {
        version: "1.1".into(),
        mode: "GREENFIELD_CONSERVATIVE".into(),
        thresholds: thresholds([0, 0, 0, 0]),
        weights_bp: [
            ("privilege", 2000),
            ("reach", 2000),
            ("class", 2000),
            ("evidence_gaps", 2500),
            ("app_history", 1500),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        effective_date: "2026-02-10".into(),
        review_date: "2026-03-10".into(),
        calibration_evidence: "none: greenfield baseline, 100% CAB review until calibrated".into(),
        backtest: None,
    }
}

fn rule(id: &str, class: BlastRadiusClass) -> ClassificationRule {
    ClassificationRule {
        id: id.into(),
        class,
        cmdb_tiers: vec![],
        keywords: vec![],
        requires_admin: None,
        min_target_users: None,
    }
}

fn list(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The blast-radius policy v1.
///
/// Target user count matters through rule `enterprise-reach`: anything installed on 5,000 or more
/// machines is at least BUSINESS_CRITICAL, whatever its name, because its failure stops a
/// significant part of the organisation. It also enters the risk score (factor `reach`).
pub fn blast_radius_policy_v1() -> BlastRadiusPolicySet {
    use BlastRadiusClass::*;
    BlastRadiusPolicySet {
        version: 1,
        approval_validity_hours: 7 * 24,
        approvers: Vec::new(),
        classes: vec![
            ClassSpec {
                class: CriticalInfrastructure,
                quorum: 3,
                description: "Security, OS, identity/auth: never auto-approved".into(),
                sbom_required: true,
            },
            ClassSpec {
                class: BusinessCritical,
                quorum: 2,
                description: "ERP, financial, customer-facing".into(),
                sbom_required: true,
            },
            ClassSpec {
                class: ProductivityTools,
                quorum: 1,
                description: "Office, collaboration".into(),
                sbom_required: false,
            },
            ClassSpec {
                class: NonCritical,
                quorum: 1,
                description: "Utilities, optional apps".into(),
                sbom_required: false,
            },
        ],
        rules: vec![
            ClassificationRule {
                cmdb_tiers: list(&["Tier0", "Tier1"]),
                ..rule("cmdb-tier0-tier1", CriticalInfrastructure)
            },
            ClassificationRule {
                keywords: list(&[
                    "security",
                    "antivirus",
                    "anti-virus",
                    "anti-malware",
                    "edr",
                    "defender",
                    "firewall",
                    "vpn",
                    "pki",
                    "certificate",
                    "identity",
                    "sso",
                    "auth",
                    "authentication",
                    "mfa",
                    "ldap",
                    "active directory",
                    "os update",
                    "windows update",
                    "kernel",
                    "driver",
                    "bios",
                    "firmware",
                    "patch",
                ]),
                requires_admin: Some(true),
                ..rule("security-or-os-with-admin", CriticalInfrastructure)
            },
            ClassificationRule {
                keywords: list(&[
                    "erp",
                    "sap",
                    "oracle ebs",
                    "financial",
                    "finance",
                    "payments",
                    "payment",
                    "payroll",
                    "trading",
                    "crm",
                    "salesforce",
                    "billing",
                    "accounting",
                    "banking",
                    "treasury",
                    "customer portal",
                ]),
                ..rule("business-keywords", BusinessCritical)
            },
            ClassificationRule {
                min_target_users: Some(5000),
                ..rule("enterprise-reach", BusinessCritical)
            },
            ClassificationRule {
                keywords: list(&[
                    "office",
                    "ms office",
                    "microsoft 365",
                    "word",
                    "excel",
                    "powerpoint",
                    "outlook",
                    "teams",
                    "slack",
                    "zoom",
                    "webex",
                    "collaboration",
                    "email",
                    "chat",
                    "browser",
                    "chrome",
                    "firefox",
                    "onedrive",
                    "sharepoint",
                    "confluence",
                    "jira",
                ]),
                ..rule("productivity-keywords", ProductivityTools)
            },
        ],
    }
}

/// Maturity levels 0–4 from the seed's table (the table, not the roadmap, as the design specifies).
pub fn maturity_levels() -> Vec<MaturityLevel> {
    let level = |level, mode: &str, min_weeks, rate, p1, p2, zero_weeks, t| MaturityLevel {
        level,
        mode: mode.into(),
        min_weeks,
        max_incident_rate_bp: rate,
        max_p1: p1,
        max_p2: p2,
        zero_incident_weeks: zero_weeks,
        thresholds: thresholds(t),
    };
    vec![
        level(0, "Baseline", 0, None, None, None, 0, [0, 0, 0, 0]),
        level(
            1,
            "Cautious",
            4,
            Some(200),
            Some(0),
            None,
            0,
            [0, 5, 20, 30],
        ),
        level(
            2,
            "Moderate",
            4,
            Some(100),
            Some(0),
            Some(1),
            0,
            [0, 10, 30, 50],
        ),
        level(
            3,
            "Mature",
            4,
            Some(50),
            Some(0),
            Some(0),
            0,
            [0, 20, 45, 65],
        ),
        level(
            4,
            "Optimized",
            4,
            Some(10),
            Some(0),
            Some(0),
            8,
            [0, 20, 50, 75],
        ),
    ]
}

/// The application registry a new log starts with: the design's examples of each class.
pub fn app_registry_v1() -> Vec<AppEntry> {
    use BlastRadiusClass::*;
    let entry = |app_id: &str, names: &[&str], tier: &str, criticality, reach| AppEntry {
        app_id: app_id.into(),
        display_names: list(names),
        service_tier: tier.into(),
        criticality,
        expected_reach: reach,
    };
    vec![
        entry(
            "windows-update",
            &["Windows Update", "Microsoft Windows Update"],
            "Tier0",
            CriticalInfrastructure,
            20_000,
        ),
        entry(
            "antivirus",
            &["Antivirus", "Antivirus Definitions"],
            "Tier0",
            CriticalInfrastructure,
            20_000,
        ),
        entry(
            "vpn",
            &["VPN", "VPN Client", "Cisco AnyConnect VPN"],
            "Tier1",
            CriticalInfrastructure,
            8_000,
        ),
        entry(
            "pki",
            &["PKI", "PKI Enrollment Agent"],
            "Tier0",
            CriticalInfrastructure,
            2_000,
        ),
        entry("sap", &["SAP", "SAP GUI"], "Tier2", BusinessCritical, 3_000),
        entry(
            "salesforce",
            &["Salesforce", "Salesforce Desktop"],
            "Tier2",
            BusinessCritical,
            2_500,
        ),
        entry(
            "trading-platform",
            &["Trading Platform"],
            "Tier2",
            BusinessCritical,
            400,
        ),
        entry(
            "ms-office",
            &["MS Office", "Microsoft Office"],
            "Tier2",
            ProductivityTools,
            1_000,
        ),
        entry("slack", &["Slack"], "Tier3", ProductivityTools, 500),
        entry("zoom", &["Zoom"], "Tier3", ProductivityTools, 500),
        entry("pdf-reader", &["PDF reader"], "Tier3", NonCritical, 10),
        entry(
            "screen-recorder",
            &["Screen recorder"],
            "Tier3",
            NonCritical,
            5,
        ),
    ]
}

/// The genesis entries, as (subject, payload), in order.
pub fn genesis_events() -> Vec<(String, Payload)> {
    let model = risk_model_v1_1();
    vec![
        ("risk_model/1.1".into(), Payload::RiskModelProposed(model)),
        (
            "risk_model/1.1".into(),
            Payload::RiskModelActivated(RiskModelActivated {
                version: "1.1".into(),
                previous_version: None,
                basis: "ALL_THRESHOLDS_ZERO".into(),
            }),
        ),
        (
            "blast_radius/policy".into(),
            Payload::BlastRadiusPolicySet(blast_radius_policy_v1()),
        ),
        (
            "maturity/levels".into(),
            Payload::MaturityLevelsDefined(MaturityLevelsDefined {
                levels: maturity_levels(),
            }),
        ),
        (
            "cab/members".into(),
            Payload::SignedVotesRequired(SignedVotesRequired {
                namespace: crate::vote_statement::NAMESPACE.into(),
            }),
        ),
        (
            "evidence_producer".into(),
            Payload::SignedEvidenceRequired(SignedEvidenceRequired {
                namespace: crate::evidence_signature::NAMESPACE.into(),
            }),
        ),
    ]
    .into_iter()
    .chain(app_registry_v1().into_iter().map(|entry| {
        (
            format!("app_registry/{}", entry.app_id),
            Payload::AppRegistered(AppRegistered {
                entry,
                approvers: Vec::new(),
                proposal_id: None,
            }),
        )
    }))
    .collect()
}
