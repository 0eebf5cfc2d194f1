//! The object-storage store: `s3://bucket/prefix` keeps `prefix/<job>/<name>` objects in any
//! S3-compatible service (AWS S3, MinIO, Ceph RGW, Garage, …) through the `object_store`
//! crate's S3 client.
//!
//! Credentials, region and endpoint come from the usual AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` or
//! `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` or `AWS_ENDPOINT` for a non-AWS service,
//! `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint); requests are path-style unless
//! `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`.
//!
//! An S3 PUT is atomic (readers see the old object or the new one), which is what replaces
//! the `.partial` → rename of a directory. Files larger than [`MULTIPART_FROM`] go up as a
//! multipart upload, read from disk a part at a time, so memory stays flat however long the
//! video is.

use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::{Artifact, ArtifactError, ArtifactStore, check_job, check_name, not_found};

/// Files at least this large are uploaded in parts (S3 parts must be ≥ 5 MiB but the last).
pub const MULTIPART_FROM: u64 = 16 << 20;
/// The size of each part of a multipart upload.
const PART_BYTES: usize = 8 << 20;
/// Parts in flight at once during a multipart upload.
const PARTS_IN_FLIGHT: usize = 2;

/// Job files as objects under a bucket and key prefix.
#[derive(Debug, Clone)]
pub struct S3Artifacts {
    /// The S3 client, bound to the bucket.
    store: Arc<dyn ObjectStore>,
    /// The bucket, for locations and error messages.
    bucket: String,
    /// Key prefix without leading or trailing `/` (may be empty).
    prefix: String,
}

impl S3Artifacts {
    /// The bucket and prefix with everything else from the AWS environment variables.
    pub fn from_env(bucket: &str, prefix: &str) -> Result<Self, ArtifactError> {
        Self::with_options(bucket, prefix, &[])
    }

    /// As [`S3Artifacts::from_env`], with `options` (`object_store`'s S3 configuration keys:
    /// `aws_endpoint`, `aws_access_key_id`, `aws_allow_http`, …) taking precedence over the
    /// environment. Tests point it at a local server this way without touching the process
    /// environment.
    pub fn with_options(bucket: &str, prefix: &str, options: &[(&str, &str)]) -> Result<Self, ArtifactError> {
        let location = format!("s3://{bucket}/{prefix}");
        let bad = |why: String| ArtifactError::Location { location: location.clone(), why };
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            check_name(prefix).map_err(|e| bad(e.to_string()))?;
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, value) in options {
            let key: AmazonS3ConfigKey = key.parse().map_err(|e| bad(format!("option {key}: {e}")))?;
            builder = builder.with_config(key, *value);
        }
        let store = builder.build().map_err(|e| bad(e.to_string()))?;
        Ok(Self { store: Arc::new(store), bucket: bucket.to_owned(), prefix: prefix.to_owned() })
    }

    /// The key prefix of `job`'s objects (`prefix/<job>`).
    fn job_key(&self, job: &str) -> Result<String, ArtifactError> {
        check_job(job)?;
        Ok(if self.prefix.is_empty() { job.to_owned() } else { format!("{}/{job}", self.prefix) })
    }

    fn key(&self, job: &str, name: &str) -> Result<ObjectPath, ArtifactError> {
        check_name(name)?;
        let key = format!("{}/{name}", self.job_key(job)?);
        ObjectPath::parse(&key).map_err(|_| ArtifactError::BadName(key))
    }

    fn url(&self, key: &ObjectPath) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn remote(&self, what: &str, key: &ObjectPath, e: object_store::Error) -> ArtifactError {
        ArtifactError::Remote { context: format!("{what} {}", self.url(key)), source: Box::new(e) }
    }

    fn artifact(name: &str, meta: &ObjectMeta) -> Artifact {
        Artifact { name: name.to_owned(), bytes: meta.size, etag: tag(meta) }
    }

    /// Upload a large file in parts, reading it a part at a time off the async threads.
    async fn put_in_parts(&self, key: &ObjectPath, local: &Path) -> Result<(), ArtifactError> {
        let upload = self.store.put_multipart(key).await.map_err(|e| self.remote("start upload of", key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let open = local.to_path_buf();
        let mut file = tokio::task::spawn_blocking(move || std::fs::File::open(&open))
            .await
            .map_err(|e| ArtifactError::io("upload task", std::io::Error::other(e.to_string())))?
            .map_err(|e| ArtifactError::io(format!("open {}", local.display()), e))?;
        loop {
            let (back, chunk) = tokio::task::spawn_blocking(move || {
                let mut chunk = Vec::with_capacity(PART_BYTES);
                let read = (&mut file).take(PART_BYTES as u64).read_to_end(&mut chunk).map(|_| chunk);
                (file, read)
            })
            .await
            .map_err(|e| ArtifactError::io("upload task", std::io::Error::other(e.to_string())))?;
            file = back;
            let chunk = chunk.map_err(|e| ArtifactError::io(format!("read {}", local.display()), e))?;
            if chunk.is_empty() {
                break;
            }
            writer.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(|e| self.remote("upload", key, e))?;
            writer.write(&chunk);
        }
        writer.finish().await.map_err(|e| self.remote("finish upload of", key, e))?;
        Ok(())
    }

    async fn head_key(&self, name: &str, key: &ObjectPath) -> Result<Option<Artifact>, ArtifactError> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(Self::artifact(name, &meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.remote("stat", key, e)),
        }
    }

    /// What was stored at `key` just now (the tag a later listing shows for it).
    async fn stored(&self, job: &str, name: &str, key: &ObjectPath) -> Result<Artifact, ArtifactError> {
        self.head_key(name, key).await?.ok_or_else(|| not_found(job, name))
    }
}

/// An object's tag without the quotes some servers put around it (a listing and a HEAD of
/// the same object must compare equal).
fn tag(meta: &ObjectMeta) -> String {
    let etag = meta.e_tag.as_deref().unwrap_or_default().trim_matches('"');
    if etag.is_empty() { format!("{:x}-{}", meta.size, meta.last_modified.timestamp_micros()) } else { etag.to_owned() }
}

impl ArtifactStore for S3Artifacts {
    fn location(&self, job: &str) -> String {
        match self.job_key(job) {
            Ok(key) => format!("s3://{}/{key}/", self.bucket),
            Err(_) => format!("s3://{}/{}", self.bucket, self.prefix),
        }
    }

    fn is_working_dir(&self) -> bool {
        false
    }

    fn put_file<'a>(
        &'a self,
        job: &'a str,
        name: &'a str,
        local: &'a Path,
    ) -> BoxFuture<'a, Result<Artifact, ArtifactError>> {
        Box::pin(async move {
            let key = self.key(job, name)?;
            let size =
                std::fs::metadata(local).map_err(|e| ArtifactError::io(format!("stat {}", local.display()), e))?.len();
            if size >= MULTIPART_FROM {
                self.put_in_parts(&key, local).await?;
            } else {
                let path = local.to_path_buf();
                let data = tokio::task::spawn_blocking(move || std::fs::read(&path))
                    .await
                    .map_err(|e| ArtifactError::io("upload task", std::io::Error::other(e.to_string())))?
                    .map_err(|e| ArtifactError::io(format!("read {}", local.display()), e))?;
                self.store.put(&key, PutPayload::from(data)).await.map_err(|e| self.remote("upload", &key, e))?;
            }
            self.stored(job, name, &key).await
        })
    }

    fn put_bytes<'a>(
        &'a self,
        job: &'a str,
        name: &'a str,
        bytes: Bytes,
    ) -> BoxFuture<'a, Result<Artifact, ArtifactError>> {
        Box::pin(async move {
            let key = self.key(job, name)?;
            self.store.put(&key, PutPayload::from(bytes)).await.map_err(|e| self.remote("upload", &key, e))?;
            self.stored(job, name, &key).await
        })
    }

    fn head<'a>(&'a self, job: &'a str, name: &'a str) -> BoxFuture<'a, Result<Option<Artifact>, ArtifactError>> {
        Box::pin(async move {
            let key = self.key(job, name)?;
            self.head_key(name, &key).await
        })
    }

    fn get_range<'a>(
        &'a self,
        job: &'a str,
        name: &'a str,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<Bytes, ArtifactError>> {
        Box::pin(async move {
            let key = self.key(job, name)?;
            if range.start > range.end {
                return Err(ArtifactError::BadRange {
                    name: name.to_owned(),
                    start: range.start,
                    end: range.end,
                    size: 0,
                });
            }
            if range.is_empty() {
                return Ok(Bytes::new());
            }
            match self.store.get_range(&key, range.clone()).await {
                Ok(bytes) if bytes.len() as u64 == range.end - range.start => Ok(bytes),
                // A server answers a range reaching past the end with what there is.
                Ok(bytes) => Err(ArtifactError::BadRange {
                    name: name.to_owned(),
                    start: range.start,
                    end: range.end,
                    size: range.start + bytes.len() as u64,
                }),
                Err(object_store::Error::NotFound { .. }) => Err(not_found(job, name)),
                Err(e) => {
                    // Past the end: say so with the size, as the directory store does.
                    if let Ok(Some(meta)) = self.head_key(name, &key).await
                        && range.end > meta.bytes
                    {
                        return Err(ArtifactError::BadRange {
                            name: name.to_owned(),
                            start: range.start,
                            end: range.end,
                            size: meta.bytes,
                        });
                    }
                    Err(self.remote("read", &key, e))
                }
            }
        })
    }

    fn list<'a>(&'a self, job: &'a str) -> BoxFuture<'a, Result<Vec<Artifact>, ArtifactError>> {
        Box::pin(async move {
            let base = self.job_key(job)?;
            let prefix = ObjectPath::parse(&base).map_err(|_| ArtifactError::BadName(base.clone()))?;
            let mut listing = self.store.list(Some(&prefix));
            let mut out = Vec::new();
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| self.remote("list", &prefix, e))?;
                let full = meta.location.as_ref();
                if let Some(name) = full.strip_prefix(&format!("{base}/"))
                    && check_name(name).is_ok()
                {
                    out.push(Self::artifact(name, &meta));
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
    }

    fn remove_job<'a>(&'a self, job: &'a str) -> BoxFuture<'a, Result<(), ArtifactError>> {
        Box::pin(async move {
            for artifact in self.list(job).await? {
                let key = self.key(job, &artifact.name)?;
                match self.store.delete(&key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.remote("delete", &key, e)),
                }
            }
            Ok(())
        })
    }
}
