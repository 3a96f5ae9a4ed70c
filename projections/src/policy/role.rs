//! The roles a principal may hold: one definition for the policy (which grants them), the
//! service (which checks them) and the API's route table and document (which list them).

/// A role a principal may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything, changes nothing.
    Auditor,
    /// Runs the service; records evidence.
    Operator,
    /// Submits deployments and records evidence.
    Submitter,
    /// The deploy agent: presents artifacts at release.
    Deployer,
    /// CAB member duties (votes, exceptions, break-glass, reviews). Membership itself is data.
    Cab,
    /// Reports incidents.
    IncidentReporter,
    /// Manages models, CAB membership, keys and access.
    Admin,
}

impl Role {
    /// Every role, in the order documents list them.
    pub const ALL: [Self; 7] = [
        Self::Admin,
        Self::Auditor,
        Self::Cab,
        Self::Deployer,
        Self::IncidentReporter,
        Self::Operator,
        Self::Submitter,
    ];

    /// Its name as tokens carry it (`incident-reporter`, `cab`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auditor => "auditor",
            Self::Operator => "operator",
            Self::Submitter => "submitter",
            Self::Deployer => "deployer",
            Self::Cab => "cab",
            Self::IncidentReporter => "incident-reporter",
            Self::Admin => "admin",
        }
    }

    /// Parses a role name as tokens carry it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}
