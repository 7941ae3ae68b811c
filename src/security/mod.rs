//! Who may do what. A caller's identity (`Principal`) comes from its verified client
//! certificate; every gRPC method asks `authorize` before it does anything. The whole policy is
//! the one `match` below, so it can be read, and tested, as a table.

pub mod certs;
pub mod identity;
pub mod rate;

use crate::domain::{UnitCode, UnitTree};
use std::fmt;

/// The caller, as its certificate says (see `identity` for the SAN URI scheme).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A reporting unit's system: `urn:tonghop:unit:BS03`.
    Unit(UnitCode),
    /// A provincial analyst: `urn:tonghop:role:analyst`.
    Analyst,
    /// An administrator: `urn:tonghop:role:admin`.
    Admin,
    /// No TLS (`--insecure`, the demo): nobody is identified, so nothing is refused.
    Insecure,
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Unit(code) => write!(f, "unit:{code}"),
            Principal::Analyst => f.write_str("role:analyst"),
            Principal::Admin => f.write_str("role:admin"),
            Principal::Insecure => f.write_str("insecure"),
        }
    }
}

/// What a call wants to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store a report of this unit (the report's `unit_code`).
    SubmitReport(UnitCode),
    /// List data sets and units.
    ReadCatalog,
    /// Read analytics or exported values about this node of the unit tree.
    ReadAnalytics(UnitCode),
    /// Read generated reviews.
    ReadReviews,
    /// Generate a review, change the catalog or the units.
    Administer,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::SubmitReport(unit) => write!(f, "submit a report for {unit}"),
            Action::ReadCatalog => f.write_str("read the catalog"),
            Action::ReadAnalytics(node) => write!(f, "read analytics of {node}"),
            Action::ReadReviews => f.write_str("read reviews"),
            Action::Administer => f.write_str("administer the aggregator"),
        }
    }
}

/// The knobs of the policy, from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// A higher-level unit (a district) may submit for the units under it (its communes).
    pub parent_may_submit_for_children: bool,
    /// A unit may read analytics and values of units outside its own subtree (the published
    /// rankings); when false it sees only itself and the units under it.
    pub units_may_read_others: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            parent_may_submit_for_children: false,
            units_may_read_others: true,
        }
    }
}

/// A refusal: names the principal and the action, for the caller and the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{principal} may not {action}")]
pub struct Denied {
    pub principal: Principal,
    pub action: Action,
}

pub fn authorize(
    principal: &Principal,
    action: &Action,
    policy: &Policy,
    units: &UnitTree,
) -> Result<(), Denied> {
    let allowed = match (principal, action) {
        (Principal::Insecure | Principal::Admin, _) => true,
        (
            Principal::Analyst,
            Action::ReadCatalog | Action::ReadAnalytics(_) | Action::ReadReviews,
        ) => true,
        (Principal::Analyst, Action::SubmitReport(_) | Action::Administer) => false,
        (Principal::Unit(me), Action::SubmitReport(unit)) => {
            unit == me || (policy.parent_may_submit_for_children && units.is_within(unit, me))
        }
        (Principal::Unit(_), Action::ReadCatalog | Action::ReadReviews) => true,
        (Principal::Unit(me), Action::ReadAnalytics(node)) => {
            policy.units_may_read_others || units.is_within(node, me)
        }
        (Principal::Unit(_), Action::Administer) => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Denied {
            principal: principal.clone(),
            action: action.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: &str) -> UnitCode {
        UnitCode::parse(c).expect("code")
    }

    #[test]
    fn the_policy_as_a_table() {
        let units = UnitTree::from_csv(
            "code,name,parent,level,population\n\
             P,Province,,province,3\n\
             D1,District 1,P,district,2\n\
             C1,Commune 1,D1,commune,1\n\
             D2,District 2,P,district,1\n",
        )
        .expect("units");
        let open = Policy::default();
        let strict = Policy {
            parent_may_submit_for_children: true,
            units_may_read_others: false,
        };
        let d1 = Principal::Unit(code("D1"));
        let c1 = Principal::Unit(code("C1"));
        let submit = |u: &str| Action::SubmitReport(code(u));
        let read = |u: &str| Action::ReadAnalytics(code(u));
        // (principal, action, policy, allowed)
        let table: Vec<(&Principal, Action, &Policy, bool)> = vec![
            (&d1, submit("D1"), &open, true),
            (&d1, submit("D2"), &open, false),
            (&d1, submit("C1"), &open, false),
            (&d1, submit("C1"), &strict, true),
            (&c1, submit("D1"), &strict, false),
            (&d1, Action::ReadCatalog, &open, true),
            (&d1, read("D2"), &open, true),
            (&d1, read("D2"), &strict, false),
            (&d1, read("C1"), &strict, true),
            (&d1, read("P"), &strict, false),
            (&d1, Action::ReadReviews, &open, true),
            (&d1, Action::Administer, &open, false),
            (&Principal::Analyst, read("P"), &strict, true),
            (&Principal::Analyst, Action::ReadCatalog, &open, true),
            (&Principal::Analyst, Action::ReadReviews, &open, true),
            (&Principal::Analyst, submit("D1"), &open, false),
            (&Principal::Analyst, Action::Administer, &open, false),
            (&Principal::Admin, submit("D1"), &strict, true),
            (&Principal::Admin, Action::Administer, &strict, true),
            (&Principal::Insecure, submit("D2"), &strict, true),
        ];
        for (principal, action, policy, allowed) in table {
            let got = authorize(principal, &action, policy, &units);
            assert_eq!(got.is_ok(), allowed, "{principal} / {action} / {policy:?}");
            if let Err(denied) = got {
                assert_eq!(denied.to_string(), format!("{principal} may not {action}"));
            }
        }
    }
}
