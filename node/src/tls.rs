//! TLS for the listener: loads the operator's certificate, or creates a self-signed development
//! certificate for the node's domain in `<data_dir>/tls/` on first start and reuses it after.
//! ALPN offers HTTP/2 and HTTP/1.1. Only the `ring` provider is compiled in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("config: set both `tls.cert_file` and `tls.key_file`, or neither")]
    HalfConfigured,
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("creating the development certificate: {0}")]
    Generate(String),
}

/// Where the certificate and key the node serves come from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// True when the node created them itself (self-signed).
    pub self_signed: bool,
}

/// Resolves the certificate files, creating the development pair if needed.
pub fn ensure_files(config: &Config) -> Result<TlsFiles, TlsError> {
    match (&config.tls.cert_file.0, &config.tls.key_file.0) {
        (Some(cert), Some(key)) => Ok(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            self_signed: false,
        }),
        (None, None) => {
            let dir = config.data_dir().join("tls");
            let files = TlsFiles {
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem"),
                self_signed: true,
            };
            if !files.cert.exists() || !files.key.exists() {
                create_dev_cert(&dir, config.server.domain.host(), &files)?;
            }
            Ok(files)
        }
        _ => Err(TlsError::HalfConfigured),
    }
}

/// Writes a self-signed development certificate for `domain` (and localhost, 127.0.0.1) as
/// `cert.pem` and `key.pem` (mode 0600) in `dir`, for `chat-node dev-cert`: partners testing
/// federation name each other's `cert.pem` as the peer's `ca_file`.
pub fn write_dev_cert(dir: &Path, domain: &str) -> Result<TlsFiles, TlsError> {
    let host = domain.split(':').next().unwrap_or(domain);
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        self_signed: true,
    };
    create_dev_cert(dir, host, &files)?;
    Ok(files)
}

fn create_dev_cert(dir: &Path, host: &str, files: &TlsFiles) -> Result<(), TlsError> {
    let file_err = |p: &Path, e: std::io::Error| TlsError::File {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let mut names = vec![host.to_string()];
    for extra in ["localhost", "127.0.0.1"] {
        if !names.iter().any(|n| n == extra) {
            names.push(extra.to_string());
        }
    }
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    // Remove any half-written pair from an interrupted earlier start.
    let _ = std::fs::remove_file(&files.key);
    let _ = std::fs::remove_file(&files.cert);
    crate::crypto::write_private_file(&files.key, ck.signing_key.serialize_pem().as_bytes())
        .map_err(|e| file_err(&files.key, e))?;
    std::fs::write(&files.cert, ck.cert.pem()).map_err(|e| file_err(&files.cert, e))?;
    Ok(())
}

/// Builds the rustls server configuration from the files.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let file_err = |p: &Path, reason: String| TlsError::File {
        path: p.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_err(&files.cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(&files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err(&files.cert, "holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| file_err(&files.key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
