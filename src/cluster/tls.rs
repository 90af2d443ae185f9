//! Mutual TLS between peers. Every node presents its certificate from the cluster CA and
//! requires one from the other side, so a process without the cluster's credentials can
//! neither dial in nor be dialed. The accepting side learns who dialed from the
//! certificate (`identity`); the dialing side checks the certificate names the peer it
//! meant to reach, as any TLS client checks a server name.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::client::verify_server_name;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::certs;

/// What a node needs to accept and dial peers over mutual TLS.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
}

impl Tls {
    /// Loads `ca.pem`, `<id>.pem` and `<id>.key` from a credentials directory (as written
    /// by `node certs`).
    pub fn load(dir: &Path, id: &str) -> anyhow::Result<Tls> {
        let ca = read_certs(&certs::ca_path(dir))?;
        let chain = read_certs(&certs::cert_path(dir, id))?;
        let key_path = certs::key_path(dir, id);
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .with_context(|| format!("reading the key {}", key_path.display()))?;
        Tls::new(ca, chain, key)
    }

    pub fn new(
        ca: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> anyhow::Result<Tls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in ca {
            roots.add(cert).context("the CA certificate")?;
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .context("building the peer certificate verifier")?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .context("this node's certificate and key")?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .context("this node's certificate and key")?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }
}

/// The name a dialer expects on the certificate of the peer `id`.
pub fn server_name(id: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(id.to_string()).with_context(|| format!("{id:?} is not a DNS name"))
}

/// The one member the (already verified) certificate chain of a peer names. A chain that
/// names no member, or more than one, identifies no one.
pub fn identity(chain: &[CertificateDer<'_>], members: &[String]) -> anyhow::Result<String> {
    let Some(end_entity) = chain.first() else {
        bail!("the peer presented no certificate");
    };
    let parsed = ParsedCertificate::try_from(end_entity).context("the peer's certificate")?;
    let named: Vec<&String> = members
        .iter()
        .filter(|id| server_name(id).is_ok_and(|name| verify_server_name(&parsed, &name).is_ok()))
        .collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("the peer's certificate names no member of this cluster"),
        many => bail!("the peer's certificate names several members: {many:?}"),
    }
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn members() -> Vec<String> {
        ["n0", "n1", "n2"].map(String::from).to_vec()
    }

    fn cluster() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        certs::generate(dir.path(), &members()).unwrap();
        dir
    }

    /// Dials `server` as `client` expecting the name `expect`, over an in-memory pipe; the
    /// identity the server derives, or why either side failed.
    async fn handshake(client: ClientConfig, server: &Tls, expect: &str) -> Result<String, String> {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let acceptor = server.acceptor.clone();
        let accept = tokio::spawn(async move {
            let mut stream = acceptor.accept(b).await.map_err(|e| e.to_string())?;
            let chain = stream
                .get_ref()
                .1
                .peer_certificates()
                .unwrap_or(&[])
                .to_vec();
            let id = identity(&chain, &members()).map_err(|e| e.to_string())?;
            let mut byte = [0u8; 1];
            stream
                .read_exact(&mut byte)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(id)
        });
        let connector = TlsConnector::from(Arc::new(client));
        let dialed = async {
            let mut stream = connector.connect(server_name(expect).unwrap(), a).await?;
            stream.write_all(b"x").await?;
            stream.flush().await?;
            Ok::<_, std::io::Error>(stream)
        }
        .await;
        let accepted = accept.await.unwrap();
        dialed.map_err(|e| format!("dialer: {e}"))?;
        accepted.map_err(|e| format!("acceptor: {e}"))
    }

    fn client_config(tls: &Tls) -> ClientConfig {
        tls.connector.config().as_ref().clone()
    }

    #[tokio::test]
    async fn members_authenticate_each_other() {
        let dir = cluster();
        let n0 = Tls::load(dir.path(), "n0").unwrap();
        let n1 = Tls::load(dir.path(), "n1").unwrap();
        assert_eq!(
            handshake(client_config(&n0), &n1, "n1").await,
            Ok("n0".into())
        );
        assert_eq!(
            handshake(client_config(&n1), &n0, "n0").await,
            Ok("n1".into())
        );
    }

    #[tokio::test]
    async fn a_dialer_without_a_certificate_is_refused() {
        let dir = cluster();
        let n1 = Tls::load(dir.path(), "n1").unwrap();
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(read_certs(&certs::ca_path(dir.path())).unwrap());
        let anonymous =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let result = handshake(anonymous, &n1, "n1").await;
        assert!(result.is_err(), "{result:?}");
    }

    #[tokio::test]
    async fn a_certificate_from_another_ca_is_refused_both_ways() {
        let ours = cluster();
        let theirs = cluster();
        let n1 = Tls::load(ours.path(), "n1").unwrap();
        let intruder = Tls::load(theirs.path(), "n0").unwrap();
        let inbound = handshake(client_config(&intruder), &n1, "n1").await;
        assert!(inbound.is_err(), "{inbound:?}");
        // Nor does a member talk to a server of another cluster that claims a member's id.
        let member = Tls::load(ours.path(), "n0").unwrap();
        let fake_n1 = Tls::load(theirs.path(), "n1").unwrap();
        let outbound = handshake(client_config(&member), &fake_n1, "n1").await;
        assert!(outbound.is_err(), "{outbound:?}");
    }

    #[tokio::test]
    async fn a_dialer_that_reaches_the_wrong_member_notices() {
        let dir = cluster();
        let n0 = Tls::load(dir.path(), "n0").unwrap();
        let n2 = Tls::load(dir.path(), "n2").unwrap();
        let result = handshake(client_config(&n0), &n2, "n1").await;
        assert!(
            result.as_ref().is_err_and(|e| e.starts_with("dialer")),
            "{result:?}"
        );
    }

    #[test]
    fn identity_names_exactly_one_member() {
        let dir = cluster();
        let chain = read_certs(&certs::cert_path(dir.path(), "n2")).unwrap();
        assert_eq!(identity(&chain, &members()).unwrap(), "n2");
        let others = ["n0", "n1"].map(String::from).to_vec();
        assert!(identity(&chain, &others).is_err());
        assert!(identity(&[], &members()).is_err());
    }
}
