//! Credentials for a cluster: a CA, and for every node a certificate that names the node id
//! (as a DNS subject alternative name) signed by that CA. Peers accept each other only
//! with such a certificate, and only as the id it names (see `tls.rs`).
//!
//! Files in the credentials directory: `ca.pem` (the CA certificate every node trusts),
//! `ca.key` (kept to sign more nodes later), `<id>.pem` and `<id>.key` per node.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

/// How long generated certificates stay valid.
const VALID_YEARS: i64 = 10;

/// Where a node's files live in a credentials directory.
pub fn cert_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.pem"))
}

pub fn key_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.key"))
}

pub fn ca_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

/// A node id must be usable as a DNS name in a certificate, and compare the same way:
/// lower-case letters, digits and inner hyphens, starting with a letter, at most 63 bytes.
pub fn validate_id(id: &str) -> anyhow::Result<()> {
    let bytes = id.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if !ok {
        bail!(
            "node id {id:?} cannot name a certificate: use lower-case letters, digits and \
             hyphens, starting with a letter (e.g. n0)"
        );
    }
    Ok(())
}

/// Writes a new CA and one certificate and key per node into `dir` (created if needed).
/// Existing files of the same names are replaced; keys are readable by the owner only.
pub fn generate(dir: &Path, ids: &[String]) -> anyhow::Result<()> {
    if ids.is_empty() {
        bail!("name at least one node id");
    }
    for id in ids {
        validate_id(id)?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (not_before, not_after) = validity();

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "gossip cluster CA");
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key)?;
    write_public(&ca_path(dir), &ca_cert.pem())?;
    write_secret(&dir.join("ca.key"), &ca_key.serialize_pem())?;
    let issuer = Issuer::new(ca, ca_key);

    for id in ids {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![SanType::DnsName(id.as_str().try_into()?)];
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, id.as_str());
        // Every node is a server to the peers that dial it and a client of those it dials.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.signed_by(&key, &issuer)?;
        write_public(&cert_path(dir, id), &cert.pem())?;
        write_secret(&key_path(dir, id), &key.serialize_pem())?;
    }
    Ok(())
}

/// From a day ago (clocks differ between machines) to `VALID_YEARS` from now.
fn validity() -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (
        now - time::Duration::days(1),
        now + time::Duration::days(365 * VALID_YEARS),
    )
}

fn write_public(path: &Path, contents: &str) -> anyhow::Result<()> {
    fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_dns_labels() {
        for good in ["n0", "node-12", "a"] {
            validate_id(good).unwrap();
        }
        for bad in ["", "N0", "0n", "n_0", "n0-", "n.0", &"n".repeat(64)] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn writes_a_ca_and_a_certificate_and_private_key_per_node() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ids = ["n0", "n1"].map(String::from);
        generate(dir.path(), &ids).unwrap();
        assert!(
            fs::read_to_string(ca_path(dir.path()))
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        for id in &ids {
            assert!(
                fs::read_to_string(cert_path(dir.path(), id))
                    .unwrap()
                    .contains("BEGIN CERTIFICATE")
            );
            let key = key_path(dir.path(), id);
            assert!(fs::read_to_string(&key).unwrap().contains("PRIVATE KEY"));
            assert_eq!(
                fs::metadata(&key).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        // Generating again replaces the files.
        generate(dir.path(), &ids).unwrap();
        assert!(generate(dir.path(), &["Bad".to_string()]).is_err());
    }
}
