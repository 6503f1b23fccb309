//! Strict YAML loading with diagnostics that name file, line, column and field path.
//!
//! serde-saphyr reports a location for every parse and type error and gives
//! span-carrying values ([`Loc`]); serde_path_to_error adds the field path. Checks that
//! serde cannot express (regex syntax, references to variables) use the span of the value.

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::model::position::{Loc, Pos};

/// A user file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    pub file: PathBuf,
    pub pos: Option<Pos>,
    /// Dotted field path, e.g. `steps[3].expect.pattern`.
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
}

impl InputError {
    pub fn new(file: &Path, pos: Option<Pos>, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            pos,
            field: field.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.pos {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        write!(f, ": error")?;
        if !self.field.is_empty() {
            write!(f, " in `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

/// Many input errors at once, so a user fixes a file in one pass.
#[derive(Debug, Clone, Default)]
pub struct InputErrors(pub Vec<InputError>);

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputErrors {}

impl From<InputError> for InputErrors {
    fn from(e: InputError) -> Self {
        Self(vec![e])
    }
}

/// The largest user file we read; a profile or scenario is a few KiB.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads and strictly deserializes one YAML document.
pub fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, InputError> {
    parse(path, &read_text(path)?)
}

/// Reads a user file: a regular file only, at most MAX_FILE_BYTES actually read, UTF-8.
pub fn read_text(path: &Path) -> Result<String, InputError> {
    use crate::util::ReadError;
    let bytes = crate::util::read_regular(path, MAX_FILE_BYTES).map_err(|e| match e {
        ReadError::Io(e) => InputError::new(path, None, "", format!("cannot read file: {e}")),
        // a FIFO would block, /dev/zero would never end: only regular files are read
        ReadError::NotRegular => InputError::new(path, None, "", "not a regular file"),
        ReadError::TooLarge => InputError::new(
            path,
            None,
            "",
            format!("file is larger than the limit of {MAX_FILE_BYTES} bytes"),
        ),
    })?;
    String::from_utf8(bytes).map_err(|e| InputError::new(path, None, "", format!("cannot read file: not UTF-8 ({e})")))
}

/// Deserializes YAML text that came from `path` (used for messages only).
pub fn parse<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Result<T, InputError> {
    if text.trim().is_empty() {
        return Err(
            InputError::new(path, Some(Pos { line: 1, column: 1 }), "", "the file is empty")
                .with_hint("run `certbench schema` for the fields this file needs"),
        );
    }
    let field = RefCell::new(String::new());
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            *field.borrow_mut() = e.path().to_string();
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let pos = e.location().map(|l| Pos {
            line: l.line() as u32,
            column: l.column() as u32,
        });
        let mut field = field.into_inner();
        if field == "." {
            field.clear();
        }
        // a span-carrying value (Loc) adds an inner `.value` that the user never wrote
        if let Some(f) = field.strip_suffix(".value") {
            field = f.to_string();
        }
        field = field.replace("].value", "]");
        let message = first_line(&e.to_string());
        let hint = hint_for(&message);
        let mut err = InputError::new(path, pos, field, message);
        err.hint = hint;
        err
    })
}

/// serde-saphyr prefixes "error: line L column C: " and appends a snippet; keep the words.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s);
    let line = line.strip_prefix("error: ").unwrap_or(line);
    // drop the "line L column C: " prefix, the location is printed separately
    if let Some(rest) = line.strip_prefix("line ")
        && let Some((_, msg)) = rest.split_once(": ")
    {
        return msg.to_string();
    }
    line.to_string()
}

fn hint_for(message: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        Some("check the spelling; `certbench schema` lists every field".into())
    } else if message.starts_with("unknown variant") {
        Some("use one of the names listed".into())
    } else if message.starts_with("missing field") {
        Some("this field is required here".into())
    } else if message.starts_with("invalid") || message.contains("expected") {
        Some("the value has the wrong type; `certbench schema` gives the expected type".into())
    } else {
        None
    }
}

/// Validates a regex written by the user, reporting its position on failure.
pub fn regex(file: &Path, field: &str, src: &Loc<String>) -> Result<regex::bytes::Regex, InputError> {
    regex::bytes::RegexBuilder::new(&src.value)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let msg = e.to_string();
            let short = msg.lines().last().unwrap_or(&msg).trim().to_string();
            InputError::new(
                file,
                Some(src.pos),
                field,
                format!("invalid regular expression {:?}: {short}", src.value),
            )
            .with_hint(
                "patterns use Rust regex syntax (https://docs.rs/regex); escape literal ( [ { . * + ? with a backslash",
            )
        })
}
