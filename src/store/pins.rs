//! What a run started with: the SHA-256 of the workflow, of every file it
//! `use`s and of the standard library, and the contents of the files its
//! `file()`/`folder()` inputs read (stored once each, by hash). A resume
//! compares the files as they are now with these and is refused on any
//! change unless `--accept-changes`; it reads its inputs from the store.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};

use super::{Store, StoreError};

/// One pinned file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// `workflow`, `import`, `stdlib` or `input`.
    pub kind: String,
    /// The input's name for an input; the version for the standard
    /// library; the path otherwise.
    pub name: String,
    /// The file: absolute for the workflow and imports, relative to the
    /// workflow's directory for inputs.
    pub path: String,
    pub hash: String,
}

/// The files a run is started (or resumed) with, and the contents of its
/// inputs' files.
#[derive(Debug, Clone, Default)]
pub struct Pinned {
    pub pins: Vec<Pin>,
    /// hash → content, for the inputs' files.
    pub blobs: BTreeMap<String, Vec<u8>>,
}

impl Pinned {
    pub fn add(&mut self, kind: &str, name: &str, path: &str, content: &[u8]) {
        let hash = super::content_hash(content);
        if kind == "input" {
            self.blobs
                .entry(hash.clone())
                .or_insert_with(|| content.to_vec());
        }
        self.pins.push(Pin {
            kind: kind.to_string(),
            name: name.to_string(),
            path: path.to_string(),
            hash,
        });
    }

    /// Every change from `old` (what the run recorded) to these, one
    /// line each: `import lib.guardflow: 1a2b3c4d5e6f → 7a8b9c0d1e2f`.
    pub fn changes_from(&self, old: &[Pin]) -> Vec<String> {
        let key = |p: &Pin| (p.kind.clone(), p.name.clone(), p.path.clone());
        let short = |h: &str| h.chars().take(12).collect::<String>();
        let before: BTreeMap<_, _> = old.iter().map(|p| (key(p), p)).collect();
        let after: BTreeMap<_, _> = self.pins.iter().map(|p| (key(p), p)).collect();
        let mut out = Vec::new();
        let what = |p: &Pin| match p.kind.as_str() {
            "input" => format!("input `{}`: {}", p.name, p.path),
            "stdlib" => "the standard library".to_string(),
            kind => format!("{kind} {}", p.path),
        };
        let (old_std, new_std) = (
            old.iter().find(|p| p.kind == "stdlib"),
            self.pins.iter().find(|p| p.kind == "stdlib"),
        );
        if let (Some(a), Some(b)) = (old_std, new_std) {
            if a.hash != b.hash {
                out.push(format!(
                    "the standard library: guardflow {} ({}) → guardflow {} ({})",
                    a.name,
                    short(&a.hash),
                    b.name,
                    short(&b.hash)
                ));
            }
        }
        for (k, a) in &before {
            if a.kind == "stdlib" {
                continue;
            }
            match after.get(k) {
                Some(b) if b.hash != a.hash => out.push(format!(
                    "{}: {} → {}",
                    what(a),
                    short(&a.hash),
                    short(&b.hash)
                )),
                Some(_) => {}
                None => out.push(format!("{}: removed (was {})", what(a), short(&a.hash))),
            }
        }
        for (k, b) in &after {
            if b.kind != "stdlib" && !before.contains_key(k) {
                out.push(format!("{}: added ({})", what(b), short(&b.hash)));
            }
        }
        out
    }
}

/// Records `pinned` for session `session` of run `id`, in the open
/// transaction.
pub(super) fn record(
    conn: &Connection,
    id: &str,
    session: i64,
    pinned: &Pinned,
) -> rusqlite::Result<()> {
    let mut blob =
        conn.prepare_cached("INSERT OR IGNORE INTO blobs (hash, content) VALUES (?1, ?2)")?;
    for (hash, content) in &pinned.blobs {
        blob.execute(params![hash, content])?;
    }
    let mut pin = conn.prepare_cached(
        "INSERT INTO pins (run_id, session, kind, name, path, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for p in &pinned.pins {
        pin.execute(params![id, session, p.kind, p.name, p.path, p.hash])?;
    }
    Ok(())
}

/// Records that session `session` of run `id` went on with `changes`.
pub(super) fn record_accepted(
    conn: &Connection,
    id: &str,
    session: i64,
    changes: &[String],
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO pins (run_id, session, kind, name, path, hash) VALUES (?1, ?2, 'accepted', 'changes', ?3, '')",
        params![id, session, changes.join("\n")],
    )?;
    Ok(())
}

impl Store {
    /// The files run `id` was started with, or last resumed with under
    /// `--accept-changes`; empty for a run recorded before format 4.
    pub fn pins(&self, id: &str) -> Result<Vec<Pin>, StoreError> {
        let conn = self.connection();
        let read = || -> rusqlite::Result<Vec<Pin>> {
            let mut stmt = conn.prepare(
                "SELECT kind, name, path, hash FROM pins
                 WHERE run_id = ?1 AND kind != 'accepted'
                   AND session = (SELECT max(session) FROM pins WHERE run_id = ?1 AND kind != 'accepted')
                 ORDER BY rowid",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok(Pin {
                    kind: r.get(0)?,
                    name: r.get(1)?,
                    path: r.get(2)?,
                    hash: r.get(3)?,
                })
            })?;
            rows.collect()
        };
        read().map_err(|e| super::sqlite_error(self.path(), e))
    }

    /// The content of a pinned input file.
    pub fn blob(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.connection()
            .query_row("SELECT content FROM blobs WHERE hash = ?1", [hash], |r| {
                r.get(0)
            })
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(|e| super::sqlite_error(self.path(), e))
    }

    /// The changes each resume with `--accept-changes` went on with, by
    /// session.
    pub fn accepted_changes(&self, id: &str) -> Result<Vec<(i64, String)>, StoreError> {
        let conn = self.connection();
        let read = || -> rusqlite::Result<Vec<(i64, String)>> {
            let mut stmt = conn.prepare(
                "SELECT session, path FROM pins WHERE run_id = ?1 AND kind = 'accepted' ORDER BY rowid",
            )?;
            let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        };
        read().map_err(|e| super::sqlite_error(self.path(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_each_file() {
        let mut old = Pinned::default();
        old.add("workflow", "/w/f.guardflow", "/w/f.guardflow", b"a");
        old.add("import", "/w/lib.guardflow", "/w/lib.guardflow", b"b");
        old.add("stdlib", "0.1.0", "std", b"s");
        old.add("input", "docs", "docs/a.md", b"1");
        old.add("input", "docs", "docs/c.md", b"3");
        let mut new = Pinned::default();
        new.add("workflow", "/w/f.guardflow", "/w/f.guardflow", b"a");
        new.add("import", "/w/lib.guardflow", "/w/lib.guardflow", b"B");
        new.add("stdlib", "0.2.0", "std", b"t");
        new.add("input", "docs", "docs/a.md", b"1");
        new.add("input", "docs", "docs/b.md", b"2");
        let changes = new.changes_from(&old.pins);
        assert_eq!(changes.len(), 4, "{changes:?}");
        assert!(changes[0].starts_with("the standard library: guardflow 0.1.0 ("));
        assert!(changes[1].starts_with("import /w/lib.guardflow: 3e23e8160039 → "));
        assert!(changes[2].starts_with("input `docs`: docs/c.md: removed (was "));
        assert!(changes[3].starts_with("input `docs`: docs/b.md: added ("));
        assert!(old.changes_from(&old.pins).is_empty());
        assert_eq!(new.blobs.len(), 2);
    }
}
