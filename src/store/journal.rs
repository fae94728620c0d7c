//! Reading the journal back, one event at a time in the order of the
//! runs and of each run: the one place that knows its columns.

use rusqlite::{Connection, OptionalExtension, Row};

use super::schema::{first_key, MAX_SEQ};

/// One recorded event. Which fields are set depends on `kind`:
/// `attempt_started` (path, occurrence, idx, action, attempt, prompt,
/// role), `attempt` (the verdict: path, occurrence, idx, output, its hash,
/// verdict, feedback, tokens, timings, an effect's outcome), `committed`
/// (path, occurrence, action, artifact, its hash), `run_finished`
/// (success and counts), anything else (path, body: the event's JSON).
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub run_id: String,
    pub seq: i64,
    pub session: i64,
    pub at_ms: i64,
    pub kind: String,
    pub path: Option<String>,
    pub occurrence: Option<i64>,
    pub idx: Option<i64>,
    pub action: Option<String>,
    pub attempt: Option<i64>,
    pub prompt: Option<String>,
    pub role: Option<String>,
    pub output: Option<String>,
    pub output_hash: Option<String>,
    pub verdict: Option<String>,
    pub feedback: Option<String>,
    pub tokens: Option<i64>,
    pub prompt_tokens: Option<i64>,
    pub outcome: Option<String>,
    pub guarded: Option<bool>,
    pub generate_ms: Option<i64>,
    pub guard_ms: Option<i64>,
    pub artifact: Option<String>,
    pub artifact_hash: Option<String>,
    pub success: Option<bool>,
    pub generator_calls: Option<i64>,
    pub guard_runs: Option<i64>,
    pub elapsed_ms: Option<i64>,
    pub body: Option<String>,
}

impl Entry {
    /// The attempt this entry starts or judges: (path, occurrence, index).
    pub fn attempt_key(&self) -> (String, i64, i64) {
        (
            self.path.clone().unwrap_or_default(),
            self.occurrence.unwrap_or(0),
            self.idx.unwrap_or(0),
        )
    }

    fn read(run_id: &str, r: &Row<'_>) -> rusqlite::Result<Entry> {
        Ok(Entry {
            run_id: run_id.to_string(),
            seq: r.get(0)?,
            session: r.get(1)?,
            at_ms: r.get(2)?,
            kind: r.get(3)?,
            path: r.get(4)?,
            occurrence: r.get(5)?,
            idx: r.get(6)?,
            action: r.get(7)?,
            attempt: r.get(8)?,
            prompt: r.get(9)?,
            role: r.get(10)?,
            output: r.get(11)?,
            output_hash: r.get(12)?,
            verdict: r.get(13)?,
            feedback: r.get(14)?,
            tokens: r.get(15)?,
            prompt_tokens: r.get(16)?,
            outcome: r.get(17)?,
            generate_ms: r.get(18)?,
            guard_ms: r.get(19)?,
            artifact: r.get(20)?,
            artifact_hash: r.get(21)?,
            success: r.get(22)?,
            generator_calls: r.get(23)?,
            guard_runs: r.get(24)?,
            elapsed_ms: r.get(25)?,
            body: r.get(26)?,
            guarded: r.get(27)?,
        })
    }
}

const COLUMNS: &str = "seq, session, at_ms, kind, path, occurrence, idx, action, attempt, \
     prompt, role, output, output_hash, verdict, feedback, tokens, prompt_tokens, outcome, \
     generate_ms, guard_ms, artifact, artifact_hash, success, generator_calls, guard_runs, \
     elapsed_ms, body, guarded";

/// The number of run `id`, if the store has it.
pub fn run_number(conn: &Connection, id: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT number FROM runs WHERE id = ?1", [id], |r| r.get(0))
        .optional()
}

/// Calls `each` with every event of run `id` (every run when `None`), in
/// order.
pub fn for_each(
    conn: &Connection,
    id: Option<&str>,
    mut each: impl FnMut(Entry) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let runs: Vec<(String, i64)> = match id {
        Some(id) => run_number(conn, id)?
            .map(|n| (id.to_string(), n))
            .into_iter()
            .collect(),
        None => conn
            .prepare("SELECT id, number FROM runs ORDER BY number")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?,
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM journal WHERE key BETWEEN ?1 AND ?2 ORDER BY key"
    ))?;
    for (id, number) in runs {
        let first = first_key(number);
        let mut rows = stmt.query([first, first + MAX_SEQ])?;
        while let Some(row) = rows.next()? {
            each(Entry::read(&id, row)?)?;
        }
    }
    Ok(())
}
