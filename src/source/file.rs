//! The `file` IdP: a JSON directory export (SPEC §2), read whole at every run.
//!
//! A missing file, malformed JSON or an unknown field fails the read with the file's path and,
//! for JSON errors, the line and column. Consistency (duplicate ids, dangling members) is checked
//! by `directory::Directory::resolve`, the same for every source.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::SourceError;
use std::borrow::Cow;

use crate::directory::{Directory, Snapshot, SnapshotGroup, SnapshotUser};

/// The directory export format, as read by the `file` IdP and written by `export`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryExport {
    /// Every user.
    pub users: Vec<ExportUser>,
    /// Every group.
    pub groups: Vec<ExportGroup>,
}

/// A user of a directory export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportUser {
    /// The immutable id.
    pub id: String,
    /// The e-mail address, the default user key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Disabled accounts are never members.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
}

fn enabled_default() -> bool {
    true
}

impl DirectoryExport {
    /// A source's read as an export: each user's key in `email`, members as ids.
    pub fn from_snapshot(snapshot: &Snapshot<&str>) -> DirectoryExport {
        DirectoryExport {
            users: snapshot
                .users
                .iter()
                .map(|u| ExportUser {
                    id: u.id.to_owned(),
                    email: u.key.map(str::to_owned),
                    name: None,
                    enabled: u.enabled,
                })
                .collect(),
            groups: snapshot
                .groups
                .iter()
                .map(|g| ExportGroup {
                    id: g.id.to_owned(),
                    name: g.name.to_owned(),
                    members: g.members.iter().map(|m| (*m).to_owned()).collect(),
                })
                .collect(),
        }
    }
}

/// A group of a directory export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportGroup {
    /// The group id.
    pub id: String,
    /// The display name.
    pub name: String,
    /// Member user ids and nested group ids.
    #[serde(default)]
    pub members: Vec<String>,
}

/// The export as parsed for a run: strings borrowed from the file's bytes where JSON allows.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BorrowedExport<'a> {
    #[serde(borrow)]
    users: Vec<BorrowedUser<'a>>,
    #[serde(borrow)]
    groups: Vec<BorrowedGroup<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BorrowedUser<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default = "enabled_default")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BorrowedGroup<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    members: Vec<Cow<'a, str>>,
}

/// Reads a directory export from a path.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    user_key: String,
    reads: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl FileSource {
    /// A source reading `path`, taking user keys from attribute `user_key` (`email`, `id` or `name`).
    pub fn new(path: PathBuf, user_key: &str) -> Self {
        FileSource {
            path,
            user_key: user_key.to_owned(),
            reads: Default::default(),
        }
    }

    /// How many times the file was read.
    pub fn requests(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads the export as it is, after checking that it resolves (ids unique, members known).
    pub async fn export(&self) -> Result<DirectoryExport, SourceError> {
        let bytes = self.bytes().await?;
        self.resolve(&bytes)?;
        self.parse(&bytes)
    }

    /// Reads the file; when its bytes hash to `unchanged_if`, skips parsing and says so. Otherwise
    /// parses it with strings borrowed from the bytes and checks it into a [`Directory`].
    pub async fn read_if_changed(
        &self,
        unchanged_if: Option<&str>,
    ) -> Result<super::SourceRead, SourceError> {
        let bytes = self.bytes().await?;
        let fingerprint = format!("xxh3:{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
        if unchanged_if == Some(fingerprint.as_str()) {
            return Ok(super::SourceRead::Unchanged);
        }
        let directory = self.resolve(&bytes)?;
        Ok(super::SourceRead::Changed {
            directory,
            fingerprint: Some(fingerprint),
        })
    }

    /// Parses the export with strings borrowed from `bytes` and checks it into a [`Directory`].
    fn resolve(&self, bytes: &[u8]) -> Result<Directory, SourceError> {
        let export: BorrowedExport<'_> = serde_json::from_slice(bytes).map_err(|e| {
            SourceError::Invalid(format!(
                "{} is not a valid directory export: {e}",
                self.path.display()
            ))
        })?;
        let snapshot = Snapshot {
            users: export
                .users
                .into_iter()
                .map(|u| {
                    let key = match self.user_key.as_str() {
                        "id" => Some(u.id.clone()),
                        "name" => u.name,
                        _ => u.email,
                    };
                    SnapshotUser {
                        id: u.id,
                        key,
                        enabled: u.enabled,
                    }
                })
                .collect(),
            groups: export
                .groups
                .into_iter()
                .map(|g| SnapshotGroup {
                    id: g.id,
                    name: g.name,
                    members: g.members,
                })
                .collect(),
        };
        Directory::resolve(snapshot).map_err(|e| {
            SourceError::Invalid(format!("{}: inconsistent read: {e}", self.path.display()))
        })
    }

    async fn bytes(&self) -> Result<Vec<u8>, SourceError> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::fs::read(&self.path).await.map_err(|e| {
            SourceError::Unavailable(format!("cannot read {}: {e}", self.path.display()))
        })
    }

    fn parse(&self, bytes: &[u8]) -> Result<DirectoryExport, SourceError> {
        serde_json::from_slice(bytes).map_err(|e| {
            SourceError::Invalid(format!(
                "{} is not a valid directory export: {e}",
                self.path.display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("dir.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn directory(path: &std::path::Path, key: &str) -> Result<Directory, SourceError> {
        match FileSource::new(path.to_owned(), key)
            .read_if_changed(None)
            .await?
        {
            super::super::SourceRead::Changed { directory, .. } => Ok(directory),
            super::super::SourceRead::Unchanged => panic!("nothing to compare with"),
        }
    }

    #[tokio::test]
    async fn reads_users_groups_and_the_chosen_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            r#"{"users":[{"id":"u1","email":"Ana@x","name":"Ana"},{"id":"u2","email":"b@x","enabled":false},
                         {"id":"u3","name":"No mail"}],
                "groups":[{"id":"g1","name":"G","members":["u1","u2","u3"]}]}"#,
        );
        let by_email = directory(&path, "email").await.unwrap();
        assert_eq!(by_email.users_total, 3);
        assert_eq!(by_email.skipped_users, 1, "u3 has no e-mail");
        let keys: Vec<&str> = by_email.users.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["ana@x"], "u2 is disabled");
        let by_name = directory(&path, "name").await.unwrap();
        let keys: Vec<&str> = by_name.users.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["ana", "no mail"]);
    }

    #[tokio::test]
    async fn an_unchanged_file_is_recognised_by_its_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, r#"{"users":[],"groups":[]}"#);
        let source = FileSource::new(path.clone(), "email");
        let Ok(super::super::SourceRead::Changed {
            fingerprint: Some(fingerprint),
            ..
        }) = source.read_if_changed(None).await
        else {
            panic!("a first read is a full read");
        };
        assert!(matches!(
            source.read_if_changed(Some(&fingerprint)).await,
            Ok(super::super::SourceRead::Unchanged)
        ));
        std::fs::write(&path, r#"{"users":[{"id":"u1"}],"groups":[]}"#).unwrap();
        assert!(matches!(
            source.read_if_changed(Some(&fingerprint)).await,
            Ok(super::super::SourceRead::Changed { .. })
        ));
    }

    #[tokio::test]
    async fn missing_malformed_and_inconsistent_files_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let missing = directory(&dir.path().join("nope.json"), "email").await;
        assert!(matches!(missing, Err(SourceError::Unavailable(m)) if m.contains("nope.json")));
        let path = write(&dir, "{\"users\": [}");
        let bad = directory(&path, "email").await;
        assert!(matches!(bad, Err(SourceError::Invalid(m)) if m.contains("line 1")));
        std::fs::write(&path, r#"{"users":[{"id":"u1","mail":"a@x"}],"groups":[]}"#).unwrap();
        let unknown = directory(&path, "email").await;
        assert!(matches!(unknown, Err(SourceError::Invalid(m)) if m.contains("mail")));
        std::fs::write(
            &path,
            r#"{"users":[{"id":"u1"}],"groups":[{"id":"g","name":"G","members":["ghost"]}]}"#,
        )
        .unwrap();
        let dangling = directory(&path, "email").await;
        assert!(matches!(dangling, Err(SourceError::Invalid(m)) if m.contains("ghost")));
        // Escaped strings cannot be borrowed from the bytes; they still parse.
        std::fs::write(&path, r#"{"users":[{"id":"u\u0031","email":"a\u0040x"}],"groups":[{"id":"g","name":"G","members":["u1"]}]}"#).unwrap();
        let escaped = directory(&path, "email").await.unwrap();
        assert_eq!(escaped.users[0].key.as_str(), "a@x");
    }
}
