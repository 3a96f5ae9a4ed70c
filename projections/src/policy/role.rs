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

/// The principal the command line acts as when an operator with access to the data directory
/// creates tokens (file-system access to the data directory is the root of trust).
pub const CLI_ADMIN: &str = "system:cli";
/// The principal scheduled maturity evaluations run as.
pub const SCHEDULER: &str = "system:scheduler";

/// The roles a principal that holds no token acts with: the command line (admin) and the
/// scheduler (operator). Any other principal acts only with a token granted in the log.
pub fn system_roles(principal: &str) -> &'static [Role] {
    match principal {
        CLI_ADMIN => &[Role::Admin],
        SCHEDULER => &[Role::Operator],
        _ => &[],
    }
}

/// The roles allowed to issue a command (any one suffices).
pub fn roles_for(command: &super::Command) -> &'static [Role] {
    use super::Command;
    match command {
        Command::ProposeRiskModel(_) => &[Role::Admin, Role::Cab],
        Command::ActivateRiskModel { .. }
        | Command::AddCabMember { .. }
        | Command::RemoveCabMember { .. }
        | Command::TrustSigningKey(_)
        | Command::RevokeSigningKey(_)
        | Command::GrantAccess(_)
        | Command::RevokeAccess(_)
        | Command::SetEvidenceProducer { .. }
        | Command::RevokeEvidenceProducer { .. }
        | Command::RequireSignedVotes => &[Role::Admin],
        Command::RevokeMemberKey { .. } => &[Role::Admin, Role::Cab],
        Command::RecordEvidence { .. } => &[Role::Submitter, Role::Operator],
        Command::Submit { .. } => &[Role::Submitter],
        Command::Release(_) | Command::PresentSbom(_) => &[Role::Deployer],
        Command::ReportIncident(_) | Command::UpdateIncident(_) => &[Role::IncidentReporter],
        Command::EvaluateMaturity { .. } => &[Role::Operator, Role::Admin, Role::Cab],
        _ => &[Role::Cab],
    }
}

/// Whether `actor` could issue `command` with the grants in `state` (or as a system principal).
pub fn holds_role_for(
    state: &crate::state::GovernanceState,
    actor: &str,
    command: &super::Command,
) -> bool {
    let allowed = roles_for(command);
    system_roles(actor).iter().any(|r| allowed.contains(r))
        || state.access.values().any(|a| {
            !a.revoked
                && a.principal == actor
                && a.roles
                    .iter()
                    .any(|r| Role::parse(r).is_some_and(|r| allowed.contains(&r)))
        })
}
