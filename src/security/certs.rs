//! `tonghop certs`: the province's own small PKI, made with rcgen. One CA; a server certificate
//! for the aggregator's host names; one client certificate per reporting unit, and analyst and
//! administrator certificates, each naming its principal in a SAN URI (see `identity`).
//! Private keys are written with mode 0600; an existing CA is never overwritten.

use super::Principal;
use super::identity::uri_of;
use crate::domain::UnitTree;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} already exists; refusing to overwrite a certificate authority")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A PEM certificate and its PEM private key.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Issued {
    /// Writes `<dir>/<name>.pem` and `<dir>/<name>-key.pem` (mode 0600).
    pub fn write(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), CertError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert, &self.cert_pem).map_err(io(&cert))?;
        write_private(&key, &self.key_pem)?;
        Ok((cert, key))
    }
}

fn write_private(path: &Path, pem: &str) -> Result<(), CertError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(pem.as_bytes()).map_err(io(path))?;
    // The mode above applies only when the file is created; tighten an existing one too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io(path))?;
    }
    Ok(())
}

/// The province's certificate authority, able to sign.
pub struct Authority {
    pub cert_pem: String,
    key: KeyPair,
}

impl Authority {
    pub fn create(name: &str, days: i64) -> Result<Self, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = named(&format!("tonghop CA — {name}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(days);
        let cert = params.self_signed(&key)?;
        Ok(Authority {
            cert_pem: cert.pem(),
            key,
        })
    }

    /// Reads `ca.pem` and `ca-key.pem` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, CertError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
        let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
        Ok(Authority {
            cert_pem,
            key: KeyPair::from_pem(&key_pem)?,
        })
    }

    pub fn write(&self, dir: &Path) -> Result<(), CertError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let cert = dir.join("ca.pem");
        if cert.exists() {
            return Err(CertError::Exists(cert.display().to_string()));
        }
        std::fs::write(&cert, &self.cert_pem).map_err(io(&cert))?;
        write_private(&dir.join("ca-key.pem"), &self.key.serialize_pem())
    }

    /// The aggregator's certificate, valid for these DNS names and IP addresses.
    pub fn server(&self, hosts: &[String], days: i64) -> Result<Issued, CertError> {
        if hosts.is_empty() {
            return Err(CertError::Invalid(
                "a server certificate needs at least one host".into(),
            ));
        }
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params.distinguished_name = named(&format!("tonghop aggregator {}", hosts[0]));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params, days_from_now(days))
    }

    /// A client certificate naming `principal`, valid from yesterday for `days`.
    pub fn client(&self, principal: &Principal, days: i64) -> Result<Issued, CertError> {
        self.client_valid(principal, days_from_now(days))
    }

    /// A client certificate with an explicit validity window (tests make expired ones).
    pub fn client_valid(
        &self,
        principal: &Principal,
        validity: (OffsetDateTime, OffsetDateTime),
    ) -> Result<Issued, CertError> {
        let uri = uri_of(principal).ok_or_else(|| {
            CertError::Invalid(format!("{principal} has no certificate identity"))
        })?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = vec![SanType::URI(uri.try_into()?)];
        params.distinguished_name = named(&principal.to_string());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, validity)
    }

    fn sign(
        &self,
        mut params: CertificateParams,
        (not_before, not_after): (OffsetDateTime, OffsetDateTime),
    ) -> Result<Issued, CertError> {
        params.not_before = not_before;
        params.not_after = not_after;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn named(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn days_from_now(days: i64) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    // A day of slack before "now" for district machines whose clocks run behind.
    (now - Duration::days(1), now + Duration::days(days))
}

/// What `certs init` wrote.
pub struct InitSummary {
    pub files: Vec<PathBuf>,
}

/// A complete set for a province: CA, server, every unit, an analyst and an administrator.
pub fn init(
    units: &UnitTree,
    out: &Path,
    hosts: &[String],
    days: i64,
) -> Result<InitSummary, CertError> {
    let ca = Authority::create(&units.root().name, days.max(1) * 2)?;
    ca.write(out)?;
    let mut files = vec![out.join("ca.pem"), out.join("ca-key.pem")];
    let (c, k) = ca.server(hosts, days)?.write(out, "server")?;
    files.extend([c, k]);
    for unit in units.all() {
        let (c, k) = ca
            .client(&Principal::Unit(unit.code.clone()), days)?
            .write(&out.join("units"), unit.code.as_str())?;
        files.extend([c, k]);
    }
    for (principal, name) in [(Principal::Analyst, "analyst"), (Principal::Admin, "admin")] {
        let (c, k) = ca.client(&principal, days)?.write(out, name)?;
        files.extend([c, k]);
    }
    Ok(InitSummary { files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::identity::principal_from_der;

    fn der_of(pem: &str) -> Vec<u8> {
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        parsed.contents
    }

    #[test]
    fn client_certificates_carry_their_principal() {
        let ca = Authority::create("test", 30).expect("ca");
        let unit = Principal::Unit(crate::domain::UnitCode::parse("BS03").expect("code"));
        for p in [unit, Principal::Analyst, Principal::Admin] {
            let issued = ca.client(&p, 30).expect("issue");
            assert_eq!(principal_from_der(&der_of(&issued.cert_pem)), Ok(p));
        }
        let server = ca.server(&["localhost".into()], 30).expect("server");
        assert!(principal_from_der(&der_of(&server.cert_pem)).is_err());
    }

    #[test]
    fn keys_are_private_and_the_ca_is_never_overwritten() {
        let dir = tempfile::tempdir().expect("tmp");
        let units = UnitTree::example().expect("units");
        let summary = init(
            &units,
            dir.path(),
            &["localhost".into(), "127.0.0.1".into()],
            30,
        )
        .expect("init");
        // CA + server + 11 units + analyst + admin, two files each.
        assert_eq!(summary.files.len(), 2 * (1 + 1 + 11 + 2));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in summary
                .files
                .iter()
                .filter(|f| f.to_string_lossy().ends_with("-key.pem"))
            {
                let mode = std::fs::metadata(f).expect("stat").permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", f.display());
            }
        }
        let again = init(&units, dir.path(), &["localhost".into()], 30);
        assert!(matches!(again, Err(CertError::Exists(_))));
    }
}
