//! `tonghop certs init|issue`: the province's certificates for mutual TLS.

use super::{CertsAction, CertsArgs};
use crate::domain::{UnitCode, UnitTree};
use crate::security::Principal;
use crate::security::certs::{Authority, init};
use std::process::ExitCode;

pub fn run(args: CertsArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        CertsAction::Init {
            units,
            out,
            hosts,
            days,
        } => {
            let tree = match units {
                Some(path) => UnitTree::load(&path)?,
                None => UnitTree::example()?,
            };
            let hosts = if hosts.is_empty() {
                vec!["localhost".to_string(), "127.0.0.1".to_string()]
            } else {
                hosts
            };
            let summary = init(&tree, &out, &hosts, days)?;
            println!(
                "wrote {} files to {}: ca.pem (give to every client), server.pem + \
                 server-key.pem (the aggregator, for {}), units/<CODE>.pem + -key.pem ({} units), \
                 analyst.pem, admin.pem; keys are mode 0600, keep ca-key.pem offline",
                summary.files.len(),
                out.display(),
                hosts.join(", "),
                tree.all().len()
            );
            Ok(ExitCode::SUCCESS)
        }
        CertsAction::Issue {
            ca_dir,
            out,
            unit,
            role,
            days,
        } => {
            let ca = Authority::load(&ca_dir)?;
            let (principal, name) = match (unit, role.as_deref()) {
                (Some(code), _) => {
                    let code = UnitCode::parse(&code)
                        .map_err(|e| anyhow::anyhow!("--unit {code:?}: unit code {e}"))?;
                    let name = code.to_string();
                    (Principal::Unit(code), name)
                }
                (None, Some("admin")) => (Principal::Admin, "admin".to_string()),
                _ => (Principal::Analyst, "analyst".to_string()),
            };
            let (cert, key) = ca.client(&principal, days)?.write(&out, &name)?;
            println!(
                "issued {principal}: {} and {} (mode 0600)",
                cert.display(),
                key.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
