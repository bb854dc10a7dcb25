//! Secrets in the configuration: `X_file = "path"` or `X = "env:VAR"`, never inline.
//!
//! Secret values are wrapped in [`SecretString`] as soon as they are read, so they never reach a
//! log line, an error message or `check` output.

use std::path::Path;

use secrecy::SecretString;

use super::reader::{ConfigError, Section};

/// Reads secret `key` of `section` from `key_file` or `key = "env:VAR"`; `None` when neither is set.
pub fn read(
    section: &mut Section<'_>,
    key: &str,
    config_dir: &Path,
    env: &[(String, String)],
) -> Result<Option<SecretString>, ConfigError> {
    let file_key = format!("{key}_file");
    let from_file = section.string(&file_key)?;
    let inline = section.string(key)?;
    match (from_file, inline) {
        (Some(_), Some(_)) => Err(section.error(
            key,
            format!("give either {key} = \"env:VAR\" or {file_key} = \"path\", not both"),
        )),
        (None, None) => Ok(None),
        (None, Some(located)) => {
            let Some(var) = located.value.strip_prefix("env:") else {
                return Err(section.error_from(
                    key,
                    &located.origin,
                    format!(
                        "secrets are never written inline; use {file_key} = \"path\" or {key} = \"env:VARIABLE\""
                    ),
                ));
            };
            match env.iter().find(|(name, _)| name == var) {
                Some((_, value)) if !value.is_empty() => {
                    Ok(Some(SecretString::from(value.clone())))
                }
                _ => Err(section.error_from(
                    key,
                    &located.origin,
                    format!("environment variable {var} is not set or empty"),
                )),
            }
        }
        (Some(located), None) => {
            let credentials = env
                .iter()
                .find(|(name, _)| name == "CREDENTIALS_DIRECTORY")
                .map(|(_, dir)| Path::new(dir).to_owned());
            let given = Path::new(&located.value);
            let path = match (&credentials, given.is_relative()) {
                (Some(dir), true) => dir.join(given),
                _ => config_dir.join(given),
            };
            let text = std::fs::read_to_string(&path).map_err(|e| {
                section.error_from(
                    &file_key,
                    &located.origin,
                    format!("cannot read secret file {}: {e}", path.display()),
                )
            })?;
            let value = text
                .strip_suffix("\r\n")
                .or_else(|| text.strip_suffix('\n'))
                .unwrap_or(&text);
            if value.is_empty() {
                return Err(section.error_from(
                    &file_key,
                    &located.origin,
                    format!("secret file {} is empty", path.display()),
                ));
            }
            Ok(Some(SecretString::from(value.to_owned())))
        }
    }
}
