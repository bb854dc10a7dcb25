//! The `file` IdP: a JSON directory export (SPEC §2), read whole at every run.
//!
//! A missing file, malformed JSON or an unknown field fails the read with the file's path and,
//! for JSON errors, the line and column. Consistency (duplicate ids, dangling members) is checked
//! by `directory::Directory::resolve`, the same for every source.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::SourceError;
use crate::directory::{Snapshot, SnapshotGroup, SnapshotUser};

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

/// Reads a directory export from a path.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    user_key: String,
}

impl FileSource {
    /// A source reading `path`, taking user keys from attribute `user_key` (`email`, `id` or `name`).
    pub fn new(path: PathBuf, user_key: &str) -> Self {
        FileSource {
            path,
            user_key: user_key.to_owned(),
        }
    }

    /// Reads the export as it is, after checking that it resolves (ids unique, members known).
    pub async fn export(&self) -> Result<DirectoryExport, SourceError> {
        let export = self.read().await?;
        crate::directory::Directory::resolve(self.to_snapshot(export.clone()))
            .map_err(|e| SourceError::Invalid(format!("{}: {e}", self.path.display())))?;
        Ok(export)
    }

    /// Reads and parses the whole file.
    pub async fn snapshot(&self) -> Result<Snapshot, SourceError> {
        Ok(self.to_snapshot(self.read().await?))
    }

    /// Reads the file; when its bytes hash to `unchanged_if`, skips parsing and says so.
    pub async fn read_if_changed(
        &self,
        unchanged_if: Option<&str>,
    ) -> Result<super::SourceRead, SourceError> {
        let bytes = self.bytes().await?;
        let fingerprint = format!("xxh3:{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
        if unchanged_if == Some(fingerprint.as_str()) {
            return Ok(super::SourceRead::Unchanged);
        }
        let export = self.parse(&bytes)?;
        Ok(super::SourceRead::Changed {
            snapshot: self.to_snapshot(export),
            fingerprint: Some(fingerprint),
        })
    }

    async fn bytes(&self) -> Result<Vec<u8>, SourceError> {
        tokio::fs::read(&self.path).await.map_err(|e| {
            SourceError::Unavailable(format!("cannot read {}: {e}", self.path.display()))
        })
    }

    async fn read(&self) -> Result<DirectoryExport, SourceError> {
        let bytes = self.bytes().await?;
        self.parse(&bytes)
    }

    fn parse(&self, bytes: &[u8]) -> Result<DirectoryExport, SourceError> {
        serde_json::from_slice(bytes).map_err(|e| {
            SourceError::Invalid(format!(
                "{} is not a valid directory export: {e}",
                self.path.display()
            ))
        })
    }

    fn to_snapshot(&self, export: DirectoryExport) -> Snapshot {
        let users = export
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
            .collect();
        let groups = export
            .groups
            .into_iter()
            .map(|g| SnapshotGroup {
                id: g.id,
                name: g.name,
                members: g.members,
            })
            .collect();
        Snapshot { users, groups }
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

    #[tokio::test]
    async fn reads_users_groups_and_the_chosen_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            r#"{"users":[{"id":"u1","email":"Ana@x","name":"Ana"},{"id":"u2","enabled":false}],
                "groups":[{"id":"g1","name":"G","members":["u1","u2"]}]}"#,
        );
        let snapshot = FileSource::new(path.clone(), "email")
            .snapshot()
            .await
            .unwrap();
        assert_eq!(snapshot.users[0].key.as_deref(), Some("Ana@x"));
        assert!(snapshot.users[0].enabled && !snapshot.users[1].enabled);
        assert_eq!(snapshot.users[1].key, None);
        let by_name = FileSource::new(path, "name").snapshot().await.unwrap();
        assert_eq!(by_name.users[0].key.as_deref(), Some("Ana"));
    }

    #[tokio::test]
    async fn missing_and_malformed_files_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let missing = FileSource::new(dir.path().join("nope.json"), "email")
            .snapshot()
            .await;
        assert!(matches!(missing, Err(SourceError::Unavailable(m)) if m.contains("nope.json")));
        let path = write(&dir, "{\"users\": [}");
        let bad = FileSource::new(path.clone(), "email").snapshot().await;
        assert!(matches!(bad, Err(SourceError::Invalid(m)) if m.contains("line 1")));
        std::fs::write(&path, r#"{"users":[{"id":"u1","mail":"a@x"}],"groups":[]}"#).unwrap();
        let unknown = FileSource::new(path, "email").snapshot().await;
        assert!(matches!(unknown, Err(SourceError::Invalid(m)) if m.contains("mail")));
    }
}
