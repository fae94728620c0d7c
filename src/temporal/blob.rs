//! Payloads kept out of Temporal's history: a value whose JSON is larger
//! than the inline limit is written once to a content-addressed blob
//! directory (`<dir>/<sha256>`) and passed by reference.
//!
//! Temporal refuses a payload over 2 MB (and warns from 512 KB) and a
//! history over 50 MB; a model's answer of hundreds of KB, repeated in
//! each activity's input and result, would reach both. Every activity
//! input and result and the workflow's result go through [`Carried`],
//! so the history holds at most [`INLINE_MAX`] bytes per payload.
//! A blob is written under its own hash (a temporary file renamed into
//! place), so writing it again is harmless and replaying a history
//! that wrote it changes nothing; it is read back only if its content
//! still has that hash. Every worker and the client must see the same
//! directory (one machine, or a shared filesystem).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::runtime::Value;

/// The largest JSON kept inline in a payload.
pub const INLINE_MAX: usize = 128 * 1024;

/// The largest blob read back.
pub const BLOB_MAX: u64 = 256 << 20;

/// A value as a payload carries it: inline, or by reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Carried {
    Inline(Value),
    Stored {
        dir: String,
        sha256: String,
        bytes: u64,
    },
}

impl Carried {
    /// `value` inline when its JSON is at most `inline_max` bytes, else
    /// stored in `dir`.
    pub fn pack<T: Serialize>(value: &T, dir: &str, inline_max: usize) -> Result<Carried, String> {
        let json = serde_json::to_value(value).map_err(|e| format!("cannot encode: {e}"))?;
        let text = serde_json::to_vec(&json).map_err(|e| format!("cannot encode: {e}"))?;
        if text.len() <= inline_max {
            return Ok(Carried::Inline(json));
        }
        let sha256 = put(Path::new(dir), &text)?;
        Ok(Carried::Stored {
            dir: dir.to_string(),
            sha256,
            bytes: text.len() as u64,
        })
    }

    /// The value, read back from its blob when stored.
    pub fn open<T: DeserializeOwned>(&self) -> Result<T, String> {
        match self {
            Carried::Inline(v) => {
                T::deserialize(v).map_err(|e| format!("an unexpected payload: {e}"))
            }
            Carried::Stored { dir, sha256, .. } => {
                let bytes = get(Path::new(dir), sha256)?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| format!("the blob {sha256} is not what was stored: {e}"))
            }
        }
    }

    /// Whether the value went to the blob directory.
    pub fn is_stored(&self) -> bool {
        matches!(self, Carried::Stored { .. })
    }
}

/// Writes `bytes` under their SHA-256 in `dir` (made if missing); the
/// hash.
pub fn put(dir: &Path, bytes: &[u8]) -> Result<String, String> {
    let sha = crate::store::content_hash(bytes);
    let path = dir.join(&sha);
    if std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64) {
        return Ok(sha);
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot make the blob directory `{}`: {e}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        format!(
            "cannot write in the blob directory `{}`: {e}",
            dir.display()
        )
    })?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| format!("cannot write a blob in `{}`: {e}", dir.display()))?;
    tmp.persist(&path)
        .map_err(|e| format!("cannot write the blob `{}`: {}", path.display(), e.error))?;
    Ok(sha)
}

/// Reads the blob `sha` from `dir`, checking its hash.
pub fn get(dir: &Path, sha: &str) -> Result<Vec<u8>, String> {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{sha}` is not a blob's name"));
    }
    let path: PathBuf = dir.join(sha);
    let text = crate::check::read_text(&path, BLOB_MAX)
        .map_err(|e| format!("cannot read the blob `{}`: {e}", path.display()))?;
    let bytes = text.into_bytes();
    if crate::store::content_hash(&bytes) != sha {
        return Err(format!(
            "the blob `{}` does not have the content it was stored with",
            path.display()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_stay_inline_and_large_ones_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let small = Carried::pack(&"hi", d, 100).unwrap();
        assert_eq!(small, Carried::Inline(Value::from("hi")));
        let big = "x".repeat(1000);
        let stored = Carried::pack(&big, d, 100).unwrap();
        assert!(stored.is_stored());
        assert_eq!(stored.open::<String>().unwrap(), big);
        // the same content, the same blob
        assert_eq!(Carried::pack(&big, d, 100).unwrap(), stored);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // a blob whose content changed is refused
        let Carried::Stored { sha256, .. } = &stored else {
            unreachable!()
        };
        std::fs::write(dir.path().join(sha256), "\"y\"").unwrap();
        assert!(stored
            .open::<String>()
            .unwrap_err()
            .contains("does not have"));
        assert!(get(dir.path(), "../x").is_err());
    }
}
