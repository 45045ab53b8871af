//! Swift-style INI configuration files, read the way Swift's `readconf` and
//! paste.deploy read them.
//!
//! Syntax is Python 3's strict `ConfigParser`:
//!
//! * `[section]` headers; `key = value` or `key: value` (split at the first
//!   `=` or `:`); keys and values are trimmed;
//! * full-line comments starting with `#` or `;` (no inline comments, so
//!   `workers = 4 # four` has the value `4 # four`);
//! * a line indented deeper than its key line continues the previous value
//!   (joined with `\n`); blank lines inside a continued value are kept,
//!   trailing ones dropped;
//! * a duplicate section or a duplicate key within one file is an error;
//! * `[DEFAULT]` values are inherited by every section;
//! * `%(name)s` in a value is replaced by the value of `name` from the same
//!   section (or `[DEFAULT]`, or `here`/`__file__`), and then `%%` means `%`;
//!   values without `%(` are taken literally (Swift's `NicerInterpolation`).
//!
//! Keys keep their case by default, as in Swift's `readconf` and
//! paste.deploy (`optionxform = str`): some options are case-sensitive, for
//! example tempauth's `SERVICE_require_group`. `swift.conf` is read by Swift
//! with a plain `ConfigParser`, which lower-cases keys; use
//! [`KeyCase::Lower`] for it.
//!
//! A path that is a directory (`object-server.conf.d/`) is read as all of its
//! `*.conf` files (not starting with `.`) in sorted name order, later files
//! adding to and overriding earlier ones.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Most nested `%(name)s` references followed before giving up (Python's
/// `MAX_INTERPOLATION_DEPTH`).
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// Section name prefixes that paste.deploy owns; their sections get paste's
/// `[DEFAULT]` semantics (see [`ConfigFile::section`]).
const PASTE_PREFIXES: [&str; 8] = ["app:", "application:", "filter:", "filter-app:", "pipeline:", "composite:", "composit:", "server:"];

/// What went wrong reading a configuration file or one of its values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file or directory could not be read, or a directory held no
    /// `*.conf` file.
    #[error("Unable to read config from {}: {reason}", path.display())]
    Read {
        /// The path given to [`ConfigFile::load`].
        path: PathBuf,
        /// The operating system's reason, e.g. `No such file or directory`.
        reason: String,
    },
    /// A line of the file is not valid INI syntax.
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The file (or source name) holding the line.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What was wrong, e.g. `expected 'key = value', got "garbage"`.
        message: String,
    },
    /// A value could not be converted to the type asked for.
    #[error(transparent)]
    Value(Box<ValueError>),
    /// `[pipeline:main]` names something the server cannot run.
    #[error("{file}: {message}")]
    Pipeline {
        /// The config file.
        file: String,
        /// What is wrong, naming the filter.
        message: String,
    },
    /// A `%(name)s` reference in a value could not be resolved.
    #[error("{}[{section}] {key}: {message}", location(.file, .line))]
    Interpolation {
        /// The file that defined the value.
        file: String,
        /// 1-based line of the key, when known.
        line: Option<usize>,
        /// The section that defined the value.
        section: String,
        /// The key whose value holds the reference.
        key: String,
        /// What was wrong.
        message: String,
    },
}

/// A value that could not be converted to the type asked for, and where it
/// was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}[{section}] {key}: expected {expected}, got {value:?}", location(.file, .line))]
pub struct ValueError {
    /// The file that defined the value.
    pub file: String,
    /// 1-based line of the key, when known.
    pub line: Option<usize>,
    /// The section that defined the value (`DEFAULT` when inherited).
    pub section: String,
    /// The key.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// What was expected, e.g. `an integer`.
    pub expected: &'static str,
}

/// `file:line: ` or `file: ` for error messages.
fn location(file: &str, line: &Option<usize>) -> String {
    match line {
        Some(line) => format!("{file}:{line}: "),
        None => format!("{file}: "),
    }
}

/// How keys are normalised when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyCase {
    /// Keys keep their case (Swift's `readconf`, paste.deploy).
    #[default]
    Preserve,
    /// Keys are lower-cased (Python's default `ConfigParser`, which Swift
    /// uses for `swift.conf`).
    Lower,
}

/// One `key = value` as written, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    value: String,
    file: String,
    line: usize,
    section: String,
}

/// An ordered list of keys and their entries, in first-written order.
type Entries = Vec<(String, Entry)>;

fn entry_mut<'a>(entries: &'a mut Entries, key: &str) -> Option<&'a mut Entry> {
    entries.iter_mut().find(|(k, _)| k == key).map(|(_, e)| e)
}

/// Which sections a program looked at and which of their keys it read, so
/// that what it never read can be reported (a typo, an option of another
/// release). Shared by a `ConfigFile` and the `Section`s made from it;
/// never part of their equality.
#[derive(Debug, Clone, Default)]
struct Usage(std::sync::Arc<std::sync::Mutex<UsageSets>>);

#[derive(Debug, Default)]
struct UsageSets {
    sections: std::collections::BTreeSet<String>,
    keys: std::collections::BTreeSet<(String, String)>,
}

impl PartialEq for Usage {
    fn eq(&self, _: &Usage) -> bool {
        true
    }
}

impl Eq for Usage {}

impl Usage {
    fn lock(&self) -> std::sync::MutexGuard<'_, UsageSets> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sections every Swift program knows, besides `[DEFAULT]` and the
/// paste.deploy ones (`pipeline:`, `app:`, `filter:`, ...): the daemons'
/// sections of each server's file, and those of `swift.conf`.
const KNOWN_SECTIONS: &[&str] = &[
    "object-replicator",
    "object-reconstructor",
    "object-updater",
    "object-auditor",
    "object-expirer",
    "object-relinker",
    "container-replicator",
    "container-updater",
    "container-auditor",
    "container-sync",
    "container-sharder",
    "account-replicator",
    "account-auditor",
    "account-reaper",
    "swift-hash",
    "swift-constraints",
    "drive-audit",
];

/// A parsed configuration file (or `.conf.d` directory): `[DEFAULT]` plus
/// named sections in the order they first appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    source: String,
    here: Option<String>,
    key_case: KeyCase,
    defaults: Entries,
    sections: Vec<(String, Entries)>,
    usage: Usage,
}

/// Where the parser is while reading lines.
#[derive(Clone, Copy)]
enum Cursor {
    None,
    Default,
    Section(usize),
}

impl ConfigFile {
    /// Reads a configuration file, or every `*.conf` file of a directory in
    /// sorted order, keeping the case of keys.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        ConfigFile::load_with_case(path, KeyCase::Preserve)
    }

    /// As [`load`](Self::load), normalising keys as `key_case` says.
    pub fn load_with_case(path: &Path, key_case: KeyCase) -> Result<ConfigFile, ConfigError> {
        let read_error = |e: std::io::Error| ConfigError::Read { path: path.to_path_buf(), reason: io_reason(&e) };
        let mut config = ConfigFile::empty(&path.display().to_string(), key_case);
        if path.is_dir() {
            config.here = Some(path.display().to_string());
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(read_error)?
                .filter_map(|entry| entry.ok())
                .filter(|entry| {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    name.ends_with(".conf") && !name.starts_with('.')
                })
                .map(|entry| entry.path())
                .collect();
            files.sort();
            let mut read_any = false;
            for file in files {
                // Like ConfigParser.read(), files that cannot be opened are
                // skipped; only an empty result is an error.
                let Ok(text) = std::fs::read_to_string(&file) else {
                    continue;
                };
                config.parse_into(&text, &file.display().to_string())?;
                read_any = true;
            }
            if !read_any {
                return Err(ConfigError::Read { path: path.to_path_buf(), reason: "no readable *.conf file in directory".to_string() });
            }
        } else {
            config.here = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }).map(|p| p.display().to_string());
            let text = std::fs::read_to_string(path).map_err(read_error)?;
            config.parse_into(&text, &path.display().to_string())?;
        }
        Ok(config)
    }

    /// Parses configuration text; `source_name` names it in error messages.
    /// Keys keep their case.
    pub fn parse(text: &str, source_name: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse_with_case(text, source_name, KeyCase::Preserve)
    }

    /// As [`parse`](Self::parse), normalising keys as `key_case` says.
    pub fn parse_with_case(text: &str, source_name: &str, key_case: KeyCase) -> Result<ConfigFile, ConfigError> {
        let mut config = ConfigFile::empty(source_name, key_case);
        config.parse_into(text, source_name)?;
        Ok(config)
    }

    fn empty(source: &str, key_case: KeyCase) -> ConfigFile {
        ConfigFile { source: source.to_string(), here: None, key_case, defaults: Vec::new(), sections: Vec::new(), usage: Usage::default() }
    }

    fn transform_key(&self, key: &str) -> String {
        match self.key_case {
            KeyCase::Preserve => key.to_string(),
            KeyCase::Lower => key.to_lowercase(),
        }
    }

    /// Adds the text of one file, as Python's `ConfigParser._read` does.
    fn parse_into(&mut self, text: &str, file: &str) -> Result<(), ConfigError> {
        let syntax = |line: usize, message: String| ConfigError::Syntax { file: file.to_string(), line, message };
        // Strictness is per file: a conf.d directory may repeat a section.
        let mut sections_seen: HashSet<String> = HashSet::new();
        let mut options_seen: HashSet<(String, String)> = HashSet::new();
        let mut cursor = Cursor::None;
        let mut section_name = String::new();
        let mut option: Option<String> = None;
        let mut indent_level = 0usize;

        for (index, raw_line) in text.lines().enumerate() {
            let lineno = index + 1;
            let stripped = raw_line.trim();
            let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
            if stripped.is_empty() || is_comment {
                // A blank line inside a continued value is part of it; a
                // comment line is not.
                if !is_comment {
                    if let Some(key) = &option {
                        if let Some(entry) = self.entries_mut(cursor).and_then(|e| entry_mut(e, key)) {
                            entry.value.push('\n');
                        }
                    }
                }
                continue;
            }
            let cur_indent = raw_line.chars().take_while(|c| c.is_whitespace()).count();
            if option.is_some() && cur_indent > indent_level {
                if let Some(key) = &option {
                    if let Some(entry) = self.entries_mut(cursor).and_then(|e| entry_mut(e, key)) {
                        entry.value.push('\n');
                        entry.value.push_str(stripped);
                    }
                }
                continue;
            }
            indent_level = cur_indent;

            if let Some(name) = section_header(stripped) {
                if name == "DEFAULT" {
                    cursor = Cursor::Default;
                } else if let Some(i) = self.sections.iter().position(|(n, _)| n == name) {
                    if !sections_seen.insert(name.to_string()) {
                        return Err(syntax(lineno, format!("section [{name}] already exists")));
                    }
                    cursor = Cursor::Section(i);
                } else {
                    sections_seen.insert(name.to_string());
                    self.sections.push((name.to_string(), Vec::new()));
                    cursor = Cursor::Section(self.sections.len() - 1);
                }
                section_name = name.to_string();
                option = None;
                continue;
            }
            if matches!(cursor, Cursor::None) {
                return Err(syntax(lineno, format!("expected a [section] header before {stripped:?}")));
            }
            let Some(split) = stripped.find(['=', ':']) else {
                return Err(syntax(lineno, format!("expected 'key = value', got {stripped:?}")));
            };
            let key = stripped[..split].trim_end();
            if key.is_empty() {
                return Err(syntax(lineno, format!("expected 'key = value', got {stripped:?} (empty key)")));
            }
            let key = self.transform_key(key);
            let value = stripped[split + 1..].trim().to_string();
            if !options_seen.insert((section_name.clone(), key.clone())) {
                return Err(syntax(lineno, format!("option '{key}' in section [{section_name}] already exists")));
            }
            let entry = Entry { value, file: file.to_string(), line: lineno, section: section_name.clone() };
            let Some(entries) = self.entries_mut(cursor) else {
                continue;
            };
            match entry_mut(entries, &key) {
                Some(existing) => *existing = entry,
                None => entries.push((key.clone(), entry)),
            }
            option = Some(key);
        }

        // Python joins continued values and strips trailing blank lines.
        let all = self.defaults.iter_mut().chain(self.sections.iter_mut().flat_map(|(_, entries)| entries.iter_mut()));
        for (_, entry) in all {
            let trimmed_len = entry.value.trim_end().len();
            entry.value.truncate(trimmed_len);
        }
        Ok(())
    }

    fn entries_mut(&mut self, cursor: Cursor) -> Option<&mut Entries> {
        match cursor {
            Cursor::None => None,
            Cursor::Default => Some(&mut self.defaults),
            Cursor::Section(i) => self.sections.get_mut(i).map(|(_, e)| e),
        }
    }

    /// The path (or source name) this configuration was read from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Names of the sections, in the order they first appear; `[DEFAULT]`
    /// is not included.
    pub fn sections(&self) -> Vec<&str> {
        self.sections.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// True when the configuration has a section of that name (`DEFAULT`
    /// does not count, as in `ConfigParser.has_section`).
    pub fn has_section(&self, name: &str) -> bool {
        self.sections.iter().any(|(n, _)| n == name)
    }

    /// The `[DEFAULT]` section alone.
    pub fn defaults(&self) -> Section {
        self.make_section("DEFAULT", self.defaults.iter().cloned().collect())
    }

    /// The effective key → value map of a section, with `[DEFAULT]` merged
    /// in; `None` when there is no such section (including `DEFAULT`
    /// itself: use [`defaults`](Self::defaults)).
    ///
    /// Plain sections (`[object-replicator]`, `[swift-hash]`, ...) follow
    /// `ConfigParser`: a key in the section overrides the same key in
    /// `[DEFAULT]`.
    ///
    /// Sections owned by paste.deploy (`[app:...]`, `[filter:...]`,
    /// `[pipeline:...]`, `[composite:...]`, ...) follow paste's rules, which
    /// surprise many Swift operators:
    ///
    /// * a plain key that also exists in `[DEFAULT]` is **ignored** — the
    ///   `[DEFAULT]` value wins;
    /// * `set key = value` overrides `key` whether or not `[DEFAULT]` has it;
    /// * `get key = other` takes the value of `other` from `[DEFAULT]` (or an
    ///   earlier `set`); a reference to a missing key is ignored.
    pub fn section(&self, name: &str) -> Option<Section> {
        let (_, entries) = self.sections.iter().find(|(n, _)| n == name)?;
        let mut values: BTreeMap<String, Entry> = self.defaults.iter().cloned().collect();
        if !PASTE_PREFIXES.iter().any(|p| name.starts_with(p)) {
            values.extend(entries.iter().cloned());
            return Some(self.make_section(name, values));
        }
        let mut local: BTreeMap<String, Entry> = BTreeMap::new();
        let mut gets: Vec<(String, String)> = Vec::new();
        for (key, entry) in entries {
            if let Some(target) = key.strip_prefix("set ") {
                values.insert(target.trim().to_string(), entry.clone());
            } else if let Some(target) = key.strip_prefix("get ") {
                gets.push((target.trim().to_string(), entry.value.clone()));
            } else if self.defaults.iter().any(|(k, _)| k == key) {
                // paste.deploy: "It's a global option (?), so skip it".
                continue;
            } else {
                local.insert(key.clone(), entry.clone());
            }
        }
        for (target, source_key) in gets {
            if let Some(entry) = values.get(&source_key) {
                local.insert(target, entry.clone());
            }
        }
        values.extend(local);
        Some(self.make_section(name, values))
    }

    /// The effective `[app:<app_name>]` section, e.g.
    /// `app_section("object-server")`.
    pub fn app_section(&self, app_name: &str) -> Option<Section> {
        self.section(&format!("app:{app_name}"))
    }

    /// The effective `[filter:<filter_name>]` section.
    pub fn filter_section(&self, filter_name: &str) -> Option<Section> {
        self.section(&format!("filter:{filter_name}"))
    }

    /// The names in `[pipeline:main] pipeline = a b c`, in order; `None`
    /// when there is no such section or key.
    pub fn pipeline(&self) -> Option<Vec<String>> {
        let section = self.section("pipeline:main")?;
        let value = section.get("pipeline")?;
        Some(value.split_whitespace().map(str::to_string).collect())
    }

    fn make_section(&self, name: &str, values: BTreeMap<String, Entry>) -> Section {
        self.usage.lock().sections.insert(name.to_string());
        Section {
            name: name.to_string(),
            source: self.source.clone(),
            here: self.here.clone(),
            key_case: self.key_case,
            values,
            usage: self.usage.clone(),
        }
    }

    /// What the program never read, for warnings at start-up: each key
    /// set in a section it looked at (the key written in that section, not
    /// inherited from `[DEFAULT]`) that it never asked for, and each
    /// section no Swift program knows. `[DEFAULT]` itself is not judged:
    /// every program reading the file shares it, and a key there may be
    /// for another one. Lines are `file:line: [section] key: ...`.
    pub fn unused(&self) -> Vec<String> {
        let usage = self.usage.lock();
        let mut out = Vec::new();
        for (name, entries) in &self.sections {
            let paste = PASTE_PREFIXES.iter().any(|p| name.starts_with(p));
            let known = paste || KNOWN_SECTIONS.contains(&name.as_str()) || name.starts_with("storage-policy:");
            if !known {
                let line = entries.first().map(|(_, e)| e.line).unwrap_or(0);
                out.push(format!("{}: unknown section [{name}] (near line {line}); nothing reads it", self.source));
                continue;
            }
            if !usage.sections.contains(name) {
                continue;
            }
            for (key, entry) in entries {
                let key = key.strip_prefix("set ").map(str::trim).unwrap_or(key);
                if key.starts_with("get ") || usage.keys.contains(&(name.clone(), key.to_string())) {
                    continue;
                }
                out.push(format!("{}:{}: [{name}] {key}: unknown option, ignored", entry.file, entry.line));
            }
        }
        out
    }

    /// Logs `unused` as warnings.
    pub fn warn_unused(&self) {
        for line in self.unused() {
            crate::log::warning(&line);
        }
    }
}

/// The header name when `line` (already trimmed) is a `[section]` line.
/// Like Python's very permissive pattern, the name runs to the last `]`.
fn section_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    if end == 0 {
        return None;
    }
    Some(&rest[..end])
}

/// The text of an I/O error without Rust's ` (os error N)` tail, so messages
/// read like Swift's.
fn io_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The effective settings of one section, `[DEFAULT]` merged in, with typed
/// getters whose errors name the file, line, section, key and bad value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    name: String,
    source: String,
    here: Option<String>,
    key_case: KeyCase,
    values: BTreeMap<String, Entry>,
    usage: Usage,
}

impl Section {
    /// The section's name, e.g. `app:object-server`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration path (or source name) the section came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The raw value of `key` as written (no `%(name)s` interpolation).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.mark_used(key);
        self.values.get(key).map(|e| e.value.as_str())
    }

    /// Records that the program reads `key` here (the getters do this;
    /// call it for keys found by iterating, such as tempauth's `user_*`).
    pub fn mark_used(&self, key: &str) {
        self.usage.lock().keys.insert((self.name.clone(), key.to_string()));
    }

    /// True when the section (or `[DEFAULT]`) sets `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.mark_used(key);
        self.values.contains_key(key)
    }

    /// The keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// The raw `(key, value)` pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, e)| (k.as_str(), e.value.as_str()))
    }

    /// The line (1-based) where `key` was set, when it is set.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.values.get(key).map(|e| e.line)
    }

    /// The value of `key` after `%(name)s` interpolation, `None` if unset.
    pub fn value(&self, key: &str) -> Result<Option<String>, ConfigError> {
        self.mark_used(key);
        let Some(entry) = self.values.get(key) else {
            return Ok(None);
        };
        if !entry.value.contains("%(") {
            return Ok(Some(entry.value.clone()));
        }
        let mut out = String::new();
        self.interpolate(key, entry, &entry.value, &mut out, 1)?;
        Ok(Some(out))
    }

    fn interpolate(&self, key: &str, entry: &Entry, mut rest: &str, out: &mut String, depth: usize) -> Result<(), ConfigError> {
        let fail = |message: String| ConfigError::Interpolation {
            file: entry.file.clone(),
            line: Some(entry.line),
            section: entry.section.clone(),
            key: key.to_string(),
            message,
        };
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(fail("interpolation is nested too deeply".to_string()));
        }
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            if let Some(after) = rest.strip_prefix("%%") {
                out.push('%');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("%(") {
                let Some(close) = after.find(")s").filter(|&c| c > 0 && !after[..c].contains(')')) else {
                    return Err(fail(format!("bad interpolation variable reference {rest:?}")));
                };
                let name = match self.key_case {
                    KeyCase::Preserve => after[..close].to_string(),
                    KeyCase::Lower => after[..close].to_lowercase(),
                };
                rest = &after[close + 2..];
                let replacement = match self.values.get(&name) {
                    Some(e) => e.value.clone(),
                    None => match name.as_str() {
                        "here" if self.here.is_some() => self.here.clone().unwrap_or_default(),
                        "__file__" => self.source.clone(),
                        _ => return Err(fail(format!("bad interpolation: no option {name:?} for %({name})s"))),
                    },
                };
                if replacement.contains('%') {
                    self.interpolate(key, entry, &replacement, out, depth + 1)?;
                } else {
                    out.push_str(&replacement);
                }
            } else {
                return Err(fail(format!("'%' must be followed by '%' or '(', found {rest:?}")));
            }
        }
        out.push_str(rest);
        Ok(())
    }

    /// An error naming this section's `key`, its bad `value`, and what was expected.
    pub fn value_error(&self, key: &str, value: &str, expected: &'static str) -> ConfigError {
        let entry = self.values.get(key);
        ConfigError::Value(Box::new(ValueError {
            file: entry.map_or_else(|| self.source.clone(), |e| e.file.clone()),
            line: entry.map(|e| e.line),
            section: entry.map_or_else(|| self.name.clone(), |e| e.section.clone()),
            key: key.to_string(),
            value: value.to_string(),
            expected,
        }))
    }

    /// The string value of `key`, or `default` when unset.
    pub fn get_str(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        Ok(self.value(key)?.unwrap_or_else(|| default.to_string()))
    }

    /// A boolean as Swift's `config_true_value` reads it, but strict:
    /// `true`/`1`/`yes`/`on`/`t`/`y` are true and `false`/`0`/`no`/`off`/
    /// `f`/`n` false (any case); anything else, including an empty value,
    /// is an error rather than Swift's silent `false`.
    pub fn get_bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(value) = self.value(key)? else {
            return Ok(default);
        };
        parse_bool(&value).ok_or_else(|| self.value_error(key, &value, "a boolean (true/false, yes/no, on/off, 1/0)"))
    }

    /// An unsigned integer (`+` sign allowed), or `default` when unset.
    pub fn get_u64(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        self.get_parsed(key, default, "a non-negative integer")
    }

    /// A signed integer, or `default` when unset.
    pub fn get_i64(&self, key: &str, default: i64) -> Result<i64, ConfigError> {
        self.get_parsed(key, default, "an integer")
    }

    /// An unsigned integer that fits in `usize`, or `default` when unset.
    pub fn get_usize(&self, key: &str, default: usize) -> Result<usize, ConfigError> {
        self.get_parsed(key, default, "a non-negative integer")
    }

    /// A finite float (NaN and infinities rejected), or `default` when unset.
    pub fn get_f64(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        let Some(value) = self.value(key)? else {
            return Ok(default);
        };
        match value.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(f),
            _ => Err(self.value_error(key, &value, "a finite number")),
        }
    }

    /// A comma-separated list, items trimmed, empty items dropped (Swift's
    /// `list_from_csv`); empty when unset.
    pub fn get_list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        Ok(self.value(key)?.map(|v| list_from_csv(&v)).unwrap_or_default())
    }

    fn get_parsed<T: std::str::FromStr>(&self, key: &str, default: T, expected: &'static str) -> Result<T, ConfigError> {
        let Some(value) = self.value(key)? else {
            return Ok(default);
        };
        value.parse::<T>().map_err(|_| self.value_error(key, &value, expected))
    }
}

impl fmt::Display for Section {
    /// Writes the section back in INI form (raw values, sorted keys).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}]", self.name)?;
        for (key, entry) in &self.values {
            writeln!(f, "{key} = {}", entry.value.replace('\n', "\n    "))?;
        }
        Ok(())
    }
}

/// Swift's boolean words: `Some(true)` for true/1/yes/on/t/y,
/// `Some(false)` for false/0/no/off/f/n (any case), `None` otherwise.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// Splits a comma-separated value into trimmed, non-empty items (Swift's
/// `list_from_csv`).
pub fn list_from_csv(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ConfigFile {
        ConfigFile::parse(text, "test.conf").unwrap()
    }

    fn parse_err(text: &str) -> String {
        ConfigFile::parse(text, "/etc/swift/object-server.conf").unwrap_err().to_string()
    }

    #[test]
    fn basic_syntax() {
        let conf = parse(
            "# comment\n; another\n[DEFAULT]\nbind_ip = 127.0.0.1\nworkers: 4\n\n\
             [object-replicator]\n  concurrency   =  8  \nempty =\nurl = http://x:80/a=b\n",
        );
        assert_eq!(conf.sections(), ["object-replicator"]);
        let s = conf.section("object-replicator").unwrap();
        assert_eq!(s.get("concurrency"), Some("8"));
        assert_eq!(s.get("empty"), Some(""));
        assert_eq!(s.get("url"), Some("http://x:80/a=b"));
        assert_eq!(s.get("bind_ip"), Some("127.0.0.1"));
        assert_eq!(s.get("workers"), Some("4"));
        assert_eq!(s.line_of("concurrency"), Some(8));
        assert!(conf.section("DEFAULT").is_none());
        assert_eq!(conf.defaults().get("workers"), Some("4"));
    }

    #[test]
    fn inline_hash_is_part_of_the_value() {
        let conf = parse("[s]\nworkers = 4 # four\n");
        assert_eq!(conf.section("s").unwrap().get("workers"), Some("4 # four"));
    }

    #[test]
    fn keys_keep_case_unless_asked() {
        let text = "[filter:tempauth]\nSERVICE_require_group = service\n";
        let conf = parse(text);
        let s = conf.filter_section("tempauth").unwrap();
        assert_eq!(s.get("SERVICE_require_group"), Some("service"));
        let lower = ConfigFile::parse_with_case(text, "x", KeyCase::Lower).unwrap();
        let s = lower.filter_section("tempauth").unwrap();
        assert_eq!(s.get("service_require_group"), Some("service"));
        // Lower-casing makes these duplicates.
        assert!(ConfigFile::parse_with_case("[s]\nA = 1\na = 2\n", "x", KeyCase::Lower).is_err());
        assert!(ConfigFile::parse("[s]\nA = 1\na = 2\n", "x").is_ok());
    }

    #[test]
    fn continuation_lines() {
        let conf = parse("[s]\nkey = first\n  second\n\n    third\n# a comment\n  fourth\n\nnext = 1\n");
        let s = conf.section("s").unwrap();
        assert_eq!(s.get("key"), Some("first\nsecond\n\nthird\nfourth"));
        assert_eq!(s.get("next"), Some("1"));
        // An indented key line sets the indent that continuation must pass.
        let conf = parse("[s]\n  a = 1\n  b = 2\n    more\n");
        let s = conf.section("s").unwrap();
        assert_eq!(s.get("a"), Some("1"));
        assert_eq!(s.get("b"), Some("2\nmore"));
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        assert_eq!(
            parse_err("[DEFAULT]\nbind_port = 6200\ngarbage\n"),
            "/etc/swift/object-server.conf:3: expected 'key = value', got \"garbage\""
        );
        assert_eq!(
            parse_err("bind_port = 6200\n"),
            "/etc/swift/object-server.conf:1: expected a [section] header before \"bind_port = 6200\""
        );
        assert_eq!(parse_err("[a]\nx = 1\n[b]\n[a]\n"), "/etc/swift/object-server.conf:4: section [a] already exists");
        assert_eq!(parse_err("[a]\nx = 1\nx = 2\n"), "/etc/swift/object-server.conf:3: option 'x' in section [a] already exists");
        assert_eq!(
            parse_err("[DEFAULT]\nx = 1\n[DEFAULT]\nx = 2\n"),
            "/etc/swift/object-server.conf:4: option 'x' in section [DEFAULT] already exists"
        );
        assert!(parse_err("[a]\n= 1\n").contains("empty key"));
        assert!(parse_err("[a]\n[]\n").contains("expected 'key = value'"));
    }

    #[test]
    fn repeated_default_header_merges() {
        let conf = parse("[DEFAULT]\nx = 1\n[a]\n[DEFAULT]\ny = 2\n");
        let s = conf.section("a").unwrap();
        assert_eq!((s.get("x"), s.get("y")), (Some("1"), Some("2")));
    }

    #[test]
    fn plain_sections_override_default() {
        let conf = parse("[DEFAULT]\nworkers = 1\nlog_name = d\n[object-auditor]\nworkers = 3\n");
        let s = conf.section("object-auditor").unwrap();
        assert_eq!(s.get("workers"), Some("3"));
        assert_eq!(s.get("log_name"), Some("d"));
    }

    #[test]
    fn paste_sections_let_default_win_unless_set() {
        let conf = parse(
            "[DEFAULT]\nlog_level = INFO\nworkers = 1\nswift_dir = /etc/swift\n\
             [app:object-server]\nuse = egg:swift#object\nlog_level = DEBUG\n\
             set workers = 4\nget dir = swift_dir\n\
             [filter:recon]\nlog_level = DEBUG\nset log_level = WARNING\n",
        );
        let app = conf.app_section("object-server").unwrap();
        assert_eq!(app.get("log_level"), Some("INFO"), "DEFAULT wins over plain key");
        assert_eq!(app.get("workers"), Some("4"), "set overrides DEFAULT");
        assert_eq!(app.get("use"), Some("egg:swift#object"));
        assert_eq!(app.get("dir"), Some("/etc/swift"));
        assert!(!app.contains_key("set workers"));
        let recon = conf.filter_section("recon").unwrap();
        assert_eq!(recon.get("log_level"), Some("WARNING"));
    }

    #[test]
    fn pipeline_names() {
        let conf = parse("[pipeline:main]\npipeline = catch_errors  healthcheck\n  proxy-server\n");
        assert_eq!(conf.pipeline().unwrap(), ["catch_errors", "healthcheck", "proxy-server"]);
        assert!(parse("[a]\n").pipeline().is_none());
    }

    #[test]
    fn typed_getters() {
        let conf = parse(
            "[DEFAULT]\nbind_port = abc\n[s]\nyes = Yes\nno = off\nmaybe = maybe\n\
             n = 42\nneg = -3\nf = 0.5\nnan = nan\ninf = inf\nlist = a, b,,  c ,\n",
        );
        let s = conf.section("s").unwrap();
        assert!(s.get_bool("yes", false).unwrap());
        assert!(!s.get_bool("no", true).unwrap());
        assert!(s.get_bool("missing", true).unwrap());
        assert_eq!(s.get_u64("n", 0).unwrap(), 42);
        assert_eq!(s.get_usize("n", 0).unwrap(), 42);
        assert_eq!(s.get_i64("neg", 0).unwrap(), -3);
        assert_eq!(s.get_u64("missing", 7).unwrap(), 7);
        assert_eq!(s.get_f64("f", 0.0).unwrap(), 0.5);
        assert_eq!(s.get_list("list").unwrap(), ["a", "b", "c"]);
        assert!(s.get_list("missing").unwrap().is_empty());
        assert_eq!(s.get_str("missing", "dflt").unwrap(), "dflt");
        assert!(s.get_u64("neg", 0).is_err());
        assert!(s.get_f64("nan", 0.0).is_err());
        assert!(s.get_f64("inf", 0.0).is_err());
        assert_eq!(
            s.get_bool("maybe", false).unwrap_err().to_string(),
            "test.conf:6: [s] maybe: expected a boolean (true/false, yes/no, on/off, 1/0), got \"maybe\""
        );
        // A bad inherited value points at the [DEFAULT] line.
        assert_eq!(
            s.get_u64("bind_port", 6200).unwrap_err().to_string(),
            "test.conf:2: [DEFAULT] bind_port: expected a non-negative integer, got \"abc\""
        );
    }

    #[test]
    fn interpolation() {
        let conf = parse(
            "[DEFAULT]\nroot = /srv\n[s]\ndevices = %(root)s/node\npct = 1%\n\
             both = %(pct)s and %%\nbad = %(nope)s\nloop = %(loop)s\nsyntax = %(x\n",
        );
        let s = conf.section("s").unwrap();
        assert_eq!(s.get_str("devices", "").unwrap(), "/srv/node");
        assert_eq!(s.get_str("pct", "").unwrap(), "1%");
        assert!(s.get_str("both", "").is_err(), "'1%' cannot be interpolated");
        assert!(s.get_str("bad", "").unwrap_err().to_string().contains("nope"));
        assert!(s.get_str("loop", "").is_err());
        assert!(s.get_str("syntax", "").is_err());
        assert_eq!(s.get("devices"), Some("%(root)s/node"));
    }

    #[test]
    fn missing_file_error() {
        let err = ConfigFile::load(Path::new("/nonexistent/object-server.conf")).unwrap_err();
        assert_eq!(err.to_string(), "Unable to read config from /nonexistent/object-server.conf: No such file or directory");
    }

    #[test]
    fn conf_d_directory_is_merged_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("00-default.conf"), "[DEFAULT]\nworkers = 1\n[app:object-server]\nuse = egg:swift#object\n").unwrap();
        std::fs::write(d.join("10-app.conf"), "[app:object-server]\nset workers = 3\n[object-replicator]\nconcurrency = 2\n").unwrap();
        std::fs::write(d.join("20-override.conf"), "[object-replicator]\nconcurrency = 5\n").unwrap();
        std::fs::write(d.join(".hidden.conf"), "garbage\n").unwrap();
        std::fs::write(d.join("notes.txt"), "garbage\n").unwrap();
        let conf = ConfigFile::load(d).unwrap();
        assert_eq!(conf.sections(), ["app:object-server", "object-replicator"]);
        let app = conf.app_section("object-server").unwrap();
        assert_eq!(app.get("use"), Some("egg:swift#object"));
        assert_eq!(app.get("workers"), Some("3"));
        let repl = conf.section("object-replicator").unwrap();
        assert_eq!(repl.get("concurrency"), Some("5"));
        std::fs::write(d.join("30-bad.conf"), "[s]\nx\n").unwrap();
        let err = ConfigFile::load(d).unwrap_err().to_string();
        assert!(err.ends_with("30-bad.conf:2: expected 'key = value', got \"x\""), "{err}");

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(ConfigFile::load(empty.path()), Err(ConfigError::Read { .. })));
    }

    #[test]
    fn here_interpolation_for_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proxy-server.conf");
        std::fs::write(&path, "[s]\nlog = %(here)s/log\n").unwrap();
        let conf = ConfigFile::load(&path).unwrap();
        let s = conf.section("s").unwrap();
        assert_eq!(s.get_str("log", "").unwrap(), format!("{}/log", dir.path().display()));
    }

    #[test]
    fn saio_reference_configs_load() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/swift-saio-etc");
        let proxy = ConfigFile::load(&base.join("proxy-server.conf")).unwrap();
        let pipeline = proxy.pipeline().unwrap();
        assert_eq!(pipeline.first().map(String::as_str), Some("catch_errors"));
        assert_eq!(pipeline.last().map(String::as_str), Some("proxy-server"));
        let app = proxy.app_section("proxy-server").unwrap();
        assert!(app.get_bool("account_autocreate", false).unwrap());
        assert_eq!(app.get_u64("bind_port", 0).unwrap(), 8080);
        let tempauth = proxy.filter_section("tempauth").unwrap();
        assert_eq!(tempauth.get_list("reseller_prefix").unwrap(), ["AUTH", "SERVICE"]);
        assert_eq!(tempauth.get("SERVICE_require_group"), Some("service"));

        let object = ConfigFile::load(&base.join("object-server-1.conf")).unwrap();
        assert_eq!(object.pipeline().unwrap(), ["healthcheck", "recon", "object-server"]);
        let auditor = object.section("object-auditor").unwrap();
        assert_eq!(auditor.get_u64("files_per_second", 20).unwrap(), 100_000);
        assert!(!auditor.get_bool("mount_check", true).unwrap());
    }

    #[test]
    fn what_the_program_never_read_is_reported() {
        let conf = ConfigFile::parse(
            "[DEFAULT]\nbind_port = 1\nnobody_reads = 1\n[app:object-server]\nuse = egg:swift#object\nmount_chek = false\n\
             set log_level = DEBUG\n[object-replicator]\nconcurrency = 2\n[object-replicatr]\nx = 1\n[filter:recon]\nuse = egg:swift#recon\n",
            "object-server.conf",
        )
        .unwrap();
        let app = conf.app_section("object-server").unwrap();
        let _ = (app.get("use"), app.get("bind_port"), app.get_str("log_level", "INFO"));
        let unused = conf.unused();
        // The typo in the app's section, and the section nothing knows; not
        // [DEFAULT] (shared), not the replicator's section (another
        // program's) nor a filter section nobody looked at.
        assert_eq!(
            unused,
            [
                "object-server.conf:6: [app:object-server] mount_chek: unknown option, ignored",
                "object-server.conf: unknown section [object-replicatr] (near line 11); nothing reads it",
            ],
            "{unused:?}"
        );
        let _ = app.get("mount_chek");
        assert_eq!(conf.unused().len(), 1);
    }
}
