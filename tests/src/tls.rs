//! A private CA and a certificate it signed for 127.0.0.1 and localhost,
//! written as PEM files the way an operator would hand them to cronmesh.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

pub struct TestCa {
    /// The CA certificate (`--tls-ca`, `--api-ca`).
    pub ca: PathBuf,
    /// A server certificate for 127.0.0.1 and localhost (`--tls-cert`).
    pub cert: PathBuf,
    /// Its private key (`--tls-key`).
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA and server certificate as `NAME-ca.pem`, `NAME-cert.pem`
    /// and `NAME-key.pem` in `dir`.
    pub fn generate(dir: &Path, name: &str) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
            .expect("server params");
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");

        let write = |suffix: &str, pem: String| {
            let path = dir.join(format!("{name}-{suffix}.pem"));
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        Self {
            ca: write("ca", ca_cert.pem()),
            cert: write("cert", cert.pem()),
            key: write("key", key.serialize_pem()),
        }
    }

    /// The CA certificate's PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca).expect("read the CA")
    }

    /// `--tls-cert CERT --tls-key KEY`, to serve HTTPS.
    pub fn serve_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.to_string_lossy().into(),
            "--tls-key".into(),
            self.key.to_string_lossy().into(),
        ]
    }
}
