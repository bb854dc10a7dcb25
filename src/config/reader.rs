//! A span-keeping reader over the parsed TOML document, with environment overrides folded in.
//!
//! It owns how configuration errors are located: every error names the file and line (or the
//! environment variable) and the key. It knows nothing about what the keys mean; `config/mod.rs`
//! asks for each key it knows, and whatever is left over in a table is an unknown key.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use toml_edit::{Item, TableLike, Value};

/// A configuration error, located in the file or in the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// Where the offending value came from.
    pub origin: Origin,
    /// The dotted key (`safety.max_removals`, `idp[corp].path`), empty for whole-file errors.
    pub key: String,
    /// What is wrong, in words an administrator can act on.
    pub message: String,
}

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the configuration file (1-based), when known.
    File(Option<usize>),
    /// An environment override.
    Env(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File(Some(line)) => write!(f, "{}:{line}: ", self.file.display())?,
            Origin::File(None) => write!(f, "{}: ", self.file.display())?,
            Origin::Env(var) => write!(f, "{}: environment variable {var}: ", self.file.display())?,
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// One `IDPSYNC__…` environment override, waiting to be claimed by the key it names.
#[derive(Debug)]
struct Override {
    var: String,
    value: String,
    used: bool,
}

/// The parsed document with its overrides; sections borrow from it.
pub struct Doc {
    file: PathBuf,
    /// Byte offsets where each line starts, for binary-searching a line number.
    line_starts: Vec<usize>,
    overrides: RefCell<BTreeMap<String, Override>>,
    conflict: Option<(String, String)>,
}

impl Doc {
    /// Keeps the file text and collects `IDPSYNC__` overrides from `env`.
    pub fn new(file: &Path, text: &str, env: &[(String, String)]) -> Self {
        let mut overrides = BTreeMap::new();
        let mut conflict = None;
        for (var, value) in env {
            if let Some(rest) = var.strip_prefix("IDPSYNC__") {
                let path = rest
                    .split("__")
                    .collect::<Vec<_>>()
                    .join(".")
                    .to_lowercase();
                let previous = overrides.insert(
                    path,
                    Override {
                        var: var.clone(),
                        value: value.clone(),
                        used: false,
                    },
                );
                if let Some(previous) = previous {
                    conflict.get_or_insert((previous.var, var.clone()));
                }
            }
        }
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Doc {
            file: file.to_owned(),
            line_starts,
            overrides: RefCell::new(overrides),
            conflict,
        }
    }

    /// Two overrides that name the same key (they differ only in case): an error naming both.
    pub fn conflicting_overrides(&self) -> Option<ConfigError> {
        self.conflict.as_ref().map(|(first, second)| ConfigError {
            file: self.file.clone(),
            origin: Origin::Env(second.clone()),
            key: String::new(),
            message: format!("names the same key as {first}; set only one of them"),
        })
    }

    /// The configuration file's path.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// An error with no key, at a byte offset of the file.
    pub fn error_at(&self, offset: Option<usize>, key: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            origin: Origin::File(offset.map(|o| self.line_of(o))),
            key: key.to_owned(),
            message,
        }
    }

    /// The 1-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// The first override nobody claimed, as an error naming its variable.
    pub fn unclaimed_override(&self) -> Option<ConfigError> {
        let overrides = self.overrides.borrow();
        overrides.values().find(|o| !o.used).map(|o| ConfigError {
            file: self.file.clone(),
            origin: Origin::Env(o.var.clone()),
            key: String::new(),
            message: "names no configuration key (expected IDPSYNC__SECTION__KEY or IDPSYNC__IDP__<name>__KEY)".into(),
        })
    }

    fn take_override(&self, path: &str) -> Option<(String, String)> {
        let mut overrides = self.overrides.borrow_mut();
        let entry = overrides.get_mut(path)?;
        entry.used = true;
        Some((entry.var.clone(), entry.value.clone()))
    }
}

/// Key–value pairs of strings, in the file's order.
pub type Pairs = Vec<(String, String)>;

/// A raw value with where it came from, so validation errors can point at it.
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Its line, or the variable that set it.
    pub origin: Origin,
}

/// One table of the document (or an absent one, so overrides still apply) being read key by key.
pub struct Section<'a> {
    doc: &'a Doc,
    table: Option<&'a dyn TableLike>,
    /// The key prefix shown in errors (`safety`, `idp[corp]`).
    display: String,
    /// The override path prefix (`safety`, `idp.corp`), or `None` when overrides do not apply.
    env_prefix: Option<String>,
    offset: Option<usize>,
    claimed: Vec<String>,
    /// For a table the file lacks but overrides create: the first such variable, to blame in errors.
    env_origin: Option<String>,
}

impl<'a> Section<'a> {
    /// A section over `table`; `display` names it in errors, `env_prefix` enables overrides.
    pub fn new(
        doc: &'a Doc,
        table: Option<&'a dyn TableLike>,
        display: String,
        env_prefix: Option<String>,
        offset: Option<usize>,
    ) -> Self {
        Section {
            doc,
            table,
            display,
            env_prefix,
            offset,
            claimed: Vec::new(),
            env_origin: None,
        }
    }

    /// The same table under another display name and override prefix.
    pub fn rebase(self, display: String, env_prefix: Option<String>) -> Self {
        Section {
            display,
            env_prefix,
            ..self
        }
    }

    /// Marks `key` as known without reading it (arrays of tables read elsewhere).
    pub fn claim(&mut self, key: &str) {
        self.claimed.push(key.to_owned());
    }

    /// The line of the table's header (or of its first key), for errors about the whole entry.
    pub fn line(&self) -> Option<usize> {
        self.offset.map(|o| self.doc.line_of(o))
    }

    /// The dotted name of `key` in this section, as shown in errors.
    pub fn key_name(&self, key: &str) -> String {
        if self.display.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.display)
        }
    }

    /// An error about `key`, located at the key (or at the section when the key is absent).
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let offset = self
            .table
            .and_then(|t| t.get_key_value(key))
            .and_then(|(k, item)| k.span().or_else(|| item.span()))
            .map(|s| s.start)
            .or(self.offset);
        self.doc
            .error_at(offset, &self.key_name(key), message.into())
    }

    /// An error about a value whose origin is already known.
    pub fn error_from(
        &self,
        key: &str,
        origin: &Origin,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.doc.file.clone(),
            origin: origin.clone(),
            key: self.key_name(key),
            message: message.into(),
        }
    }

    /// An error about the section as a whole (its header line).
    pub fn entry_error(&self, message: impl Into<String>) -> ConfigError {
        match (&self.env_origin, self.table) {
            (Some(var), None) => ConfigError {
                file: self.doc.file.clone(),
                origin: Origin::Env(var.clone()),
                key: self.display.clone(),
                message: format!(
                    "{} (the file has no such table; the variable would create it)",
                    message.into()
                ),
            },
            _ => self
                .doc
                .error_at(self.offset, &self.display, message.into()),
        }
    }

    fn raw(&mut self, key: &str) -> Result<Option<Raw<'a>>, ConfigError> {
        self.claimed.push(key.to_owned());
        if let Some(prefix) = &self.env_prefix
            && let Some((var, value)) = self.doc.take_override(&format!("{prefix}.{key}"))
        {
            return Ok(Some(Raw::Env { var, value }));
        }
        let Some((k, item)) = self.table.and_then(|t| t.get_key_value(key)) else {
            return Ok(None);
        };
        let offset = k.span().or_else(|| item.span()).map(|s| s.start);
        Ok(Some(Raw::File { item, offset }))
    }

    fn type_error(&self, key: &str, origin: &Origin, expected: &str) -> ConfigError {
        self.error_from(key, origin, format!("expected {expected}"))
    }

    /// A string value.
    pub fn string(&mut self, key: &str) -> Result<Option<Located<String>>, ConfigError> {
        match self.raw(key)? {
            None => Ok(None),
            Some(Raw::Env { var, value }) => Ok(Some(Located {
                value,
                origin: Origin::Env(var),
            })),
            Some(Raw::File { item, offset }) => {
                let origin = Origin::File(offset.map(|o| self.doc.line_of(o)));
                match item.as_str() {
                    Some(s) => Ok(Some(Located {
                        value: s.to_owned(),
                        origin,
                    })),
                    None => Err(self.type_error(key, &origin, "a string")),
                }
            }
        }
    }

    /// A non-negative integer value.
    pub fn unsigned(&mut self, key: &str) -> Result<Option<Located<u64>>, ConfigError> {
        self.scalar(
            key,
            "a non-negative integer",
            |text| text.parse().ok(),
            |v| v.as_integer().and_then(|i| u64::try_from(i).ok()),
        )
    }

    /// A floating-point value (integers are accepted too).
    pub fn float(&mut self, key: &str) -> Result<Option<Located<f64>>, ConfigError> {
        self.scalar(
            key,
            "a number",
            |text| text.parse().ok(),
            |v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)),
        )
    }

    /// A boolean value.
    pub fn boolean(&mut self, key: &str) -> Result<Option<Located<bool>>, ConfigError> {
        self.scalar(
            key,
            "true or false",
            |text| text.parse().ok(),
            Value::as_bool,
        )
    }

    /// A duration: integer seconds, or a string such as `"30s"` or `"10m"`.
    pub fn duration(
        &mut self,
        key: &str,
    ) -> Result<Option<Located<std::time::Duration>>, ConfigError> {
        let parse_text = |text: &str| {
            let text = text.trim();
            text.parse::<u64>()
                .ok()
                .map(std::time::Duration::from_secs)
                .or_else(|| humantime::parse_duration(text).ok())
        };
        self.scalar(
            key,
            "a duration (seconds, or a string such as \"30s\")",
            parse_text,
            |v| match v {
                Value::Integer(i) => u64::try_from(*i.value())
                    .ok()
                    .map(std::time::Duration::from_secs),
                Value::String(s) => parse_text(s.value()),
                _ => None,
            },
        )
    }

    fn scalar<T>(
        &mut self,
        key: &str,
        expected: &str,
        from_env: impl Fn(&str) -> Option<T>,
        from_toml: impl Fn(&Value) -> Option<T>,
    ) -> Result<Option<Located<T>>, ConfigError> {
        match self.raw(key)? {
            None => Ok(None),
            Some(Raw::Env { var, value }) => {
                let origin = Origin::Env(var);
                match from_env(&value) {
                    Some(v) => Ok(Some(Located { value: v, origin })),
                    None => Err(self.type_error(key, &origin, expected)),
                }
            }
            Some(Raw::File { item, offset }) => {
                let origin = Origin::File(offset.map(|o| self.doc.line_of(o)));
                match item.as_value().and_then(&from_toml) {
                    Some(v) => Ok(Some(Located { value: v, origin })),
                    None => Err(self.type_error(key, &origin, expected)),
                }
            }
        }
    }

    /// A list of strings; an override gives it as a TOML array or as comma-separated words.
    pub fn strings(&mut self, key: &str) -> Result<Option<Located<Vec<String>>>, ConfigError> {
        let expected = "a list of strings";
        let strings_of = |v: &Value| -> Option<Vec<String>> {
            v.as_array()?
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect()
        };
        match self.raw(key)? {
            None => Ok(None),
            Some(Raw::Env { var, value }) => {
                let origin = Origin::Env(var);
                let parsed = if value.trim_start().starts_with('[') {
                    value.parse::<Value>().ok().as_ref().and_then(strings_of)
                } else {
                    Some(value.split(',').map(|s| s.trim().to_owned()).collect())
                };
                match parsed {
                    Some(list) => Ok(Some(Located {
                        value: list,
                        origin,
                    })),
                    None => Err(self.type_error(key, &origin, expected)),
                }
            }
            Some(Raw::File { item, offset }) => {
                let origin = Origin::File(offset.map(|o| self.doc.line_of(o)));
                match item.as_value().and_then(strings_of) {
                    Some(list) => Ok(Some(Located {
                        value: list,
                        origin,
                    })),
                    None => Err(self.type_error(key, &origin, expected)),
                }
            }
        }
    }

    /// A table of strings (`stages = { production = "key" }`), in the file's order; an override
    /// gives it as a TOML inline table.
    pub fn string_table(&mut self, key: &str) -> Result<Option<Located<Pairs>>, ConfigError> {
        let expected = "a table of strings";
        let pairs_of = |t: &dyn TableLike| -> Option<Vec<(String, String)>> {
            t.iter()
                .map(|(k, v)| v.as_str().map(|v| (k.to_owned(), v.to_owned())))
                .collect()
        };
        match self.raw(key)? {
            None => Ok(None),
            Some(Raw::Env { var, value }) => {
                let origin = Origin::Env(var);
                let parsed = value
                    .parse::<Value>()
                    .ok()
                    .and_then(|v| v.as_inline_table().and_then(|t| pairs_of(t)));
                match parsed {
                    Some(value) => Ok(Some(Located { value, origin })),
                    None => Err(self.type_error(key, &origin, expected)),
                }
            }
            Some(Raw::File { item, offset }) => {
                let origin = Origin::File(offset.map(|o| self.doc.line_of(o)));
                match item.as_table_like().and_then(pairs_of) {
                    Some(value) => Ok(Some(Located { value, origin })),
                    None => Err(self.type_error(key, &origin, expected)),
                }
            }
        }
    }

    /// A nested table (`[idp.oidc]` or an inline table); overrides reach it under `prefix.key`.
    pub fn table(&mut self, key: &str) -> Result<Option<Section<'a>>, ConfigError> {
        self.claimed.push(key.to_owned());
        let display = self.key_name(key);
        let env_prefix = self.env_prefix.as_ref().map(|p| format!("{p}.{key}"));
        let found = self.table.and_then(|t| t.get_key_value(key));
        match found {
            None => {
                let var = env_prefix.as_ref().and_then(|p| {
                    let prefix = format!("{p}.");
                    self.doc
                        .overrides
                        .borrow()
                        .iter()
                        .find(|(k, _)| k.starts_with(&prefix))
                        .map(|(_, o)| o.var.clone())
                });
                Ok(var.map(|var| Section {
                    env_origin: Some(var),
                    ..Section::new(self.doc, None, display, env_prefix, self.offset)
                }))
            }
            Some((k, item)) => match item.as_table_like() {
                Some(table) => {
                    let offset = k.span().or_else(|| item.span()).map(|s| s.start);
                    Ok(Some(Section::new(
                        self.doc,
                        Some(table),
                        display,
                        env_prefix,
                        offset,
                    )))
                }
                None => Err(self.error(key, "expected a table")),
            },
        }
    }

    /// Checks that every key of the table was asked for; the first unknown one is an error.
    pub fn finish(self) -> Result<(), ConfigError> {
        let Some(table) = self.table else {
            return Ok(());
        };
        for (key, _) in table.iter() {
            if !self.claimed.iter().any(|c| c == key) {
                let known = self.claimed.join(", ");
                return Err(self.error(key, format!("unknown key (known keys here: {known})")));
            }
        }
        Ok(())
    }
}

enum Raw<'a> {
    Env {
        var: String,
        value: String,
    },
    File {
        item: &'a Item,
        offset: Option<usize>,
    },
}

/// One `[[…]]` entry and the byte offset of its header.
pub type Entry<'a> = (&'a dyn TableLike, Option<usize>);

/// The entries of an array of tables (`[[idp]]`), or of an inline array of inline tables.
pub fn entries<'a>(
    doc: &Doc,
    root: &'a dyn TableLike,
    key: &str,
) -> Result<Vec<Entry<'a>>, ConfigError> {
    let Some((k, item)) = root.get_key_value(key) else {
        return Ok(Vec::new());
    };
    if let Some(tables) = item.as_array_of_tables() {
        return Ok(tables
            .iter()
            .map(|t| (t as &dyn TableLike, t.span().map(|s| s.start)))
            .collect());
    }
    if let Some(array) = item.as_array() {
        let mut out = Vec::new();
        for value in array.iter() {
            match value.as_inline_table() {
                Some(t) => out.push((t as &dyn TableLike, value.span().map(|s| s.start))),
                None => {
                    return Err(doc.error_at(
                        value.span().map(|s| s.start),
                        key,
                        "expected a table".into(),
                    ));
                }
            }
        }
        return Ok(out);
    }
    Err(doc.error_at(
        k.span().map(|s| s.start),
        key,
        format!("expected [[{key}]] tables"),
    ))
}
