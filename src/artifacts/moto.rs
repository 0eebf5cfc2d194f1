//! A real S3-compatible server for tests: moto's standalone server (`moto_server`, from the
//! PyPI package `moto[server]`, installed by `scripts/ensure_moto.sh` into `.tools/moto`),
//! started on a free loopback port with one empty bucket, and stopped when dropped. The
//! object-storage tests run against it; nothing here is used outside tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ArtifactError;
use super::s3::S3Artifacts;

/// Names another `moto_server` binary than the one `scripts/ensure_moto.sh` installs.
pub const BINARY_ENV: &str = "AIPROD_TEST_MOTO";
/// The access key the tests sign with (moto accepts any).
const ACCESS_KEY: &str = "aiprod-test";
/// The secret key the tests sign with.
const SECRET_KEY: &str = "aiprod-test-secret";
/// The region the tests name.
const REGION: &str = "us-east-1";

/// A running `moto_server` with one bucket.
#[derive(Debug)]
pub struct MotoServer {
    /// The server process, killed on drop.
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket created at start.
    pub bucket: String,
}

impl MotoServer {
    /// Where the server binary is: `$AIPROD_TEST_MOTO`, else `.tools/moto/bin/moto_server`
    /// in the source tree this crate was built from.
    pub fn binary() -> PathBuf {
        std::env::var_os(BINARY_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/moto/bin/moto_server"))
    }

    /// Start a server on a free port, wait until it answers, and create `bucket`.
    pub async fn start(bucket: &str) -> Result<Self, String> {
        let binary = Self::binary();
        if !binary.exists() {
            return Err(format!(
                "{} is missing: run ./scripts/ensure_moto.sh (make test does), or set {BINARY_ENV}",
                binary.display()
            ));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let server = Self { child, endpoint: format!("http://127.0.0.1:{port}"), bucket: bucket.to_owned() };
        let http = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // An unsigned bucket creation: moto accepts it, and it proves the server is up.
            match http.put(format!("{}/{bucket}", server.endpoint)).send().await {
                Ok(r) if r.status().is_success() => return Ok(server),
                Ok(r) => return Err(format!("creating bucket {bucket}: HTTP {}", r.status())),
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => return Err(format!("moto_server did not answer on {}: {e}", server.endpoint)),
            }
        }
    }

    /// The AWS environment variables that point a process (an `aiprod` child) at this
    /// server: credentials, region, endpoint and plain HTTP.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// A store on this server's bucket under `prefix`, configured explicitly (the test
    /// process's own environment is left alone).
    pub fn store(&self, prefix: &str) -> Result<S3Artifacts, ArtifactError> {
        let options = [
            ("aws_access_key_id", ACCESS_KEY),
            ("aws_secret_access_key", SECRET_KEY),
            ("aws_region", REGION),
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_allow_http", "true"),
        ];
        S3Artifacts::with_options(&self.bucket, prefix, &options)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
