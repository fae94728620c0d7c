//! The run store is never destroyed and a resume runs what the run
//! started with, through the real binary: a foreign WAL, a corrupt page
//! in the middle (every file byte for byte as it was), read-only stores
//! (another user's, a read-only mount), a 0-byte file, a full disk on a
//! real small file system, and changed imports and inputs.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::support::bin;

/// Answers `ok <action>`, records each call (and its prompt) in `$CALLS`;
/// waits while `$STOP` exists when asked to (`$HOLD` is the action); at
/// the action `$FILL_AT` fills the file system of `$FILL` first.
const GEN: &str = r#"#!/bin/sh
prompt=$(tr "\n" " ")
echo "$GUARDFLOW_ACTION|$prompt" >> "$CALLS"
if [ -n "$FILL_AT" ] && [ "$GUARDFLOW_ACTION" = "$FILL_AT" ]; then
  dd if=/dev/zero of="$FILL" bs=4096 2>/dev/null
fi
if [ -n "$HOLD" ] && [ "$GUARDFLOW_ACTION" = "$HOLD" ]; then
  while [ -e "$STOP" ]; do sleep 0.02; done
fi
echo "ok $GUARDFLOW_ACTION"
"#;

/// Five actions in a chain, none retried: an interruption that counted
/// as a rejection would fail the run.
const CHAIN: &str = r#"use std.{contains}
generator g = cmd("sh gen.sh", timeout: 60s, env: ["CALLS", "FILL", "FILL_AT", "HOLD", "STOP"], write: ["."])
action a1(x: Text) -> Text { :generate g "a1 {x}" :guard contains("ok") :retry 0 }
action a2(x: Text) -> Text { :generate g "a2 {x}" :guard contains("ok") :retry 0 }
action a3(x: Text) -> Text { :generate g "a3 {x}" :guard contains("ok") :retry 0 }
action a4(x: Text) -> Text { :generate g "a4 {x}" :guard contains("ok") :retry 0 }
action a5(x: Text) -> Text { :generate g "a5 {x}" :guard contains("ok") :retry 0 }
task main(goal: Text) -> Text {
  method m {
    :subtasks (p1: a1(goal), p2: a2(p1), p3: a3(p2), p4: a4(p3), p5: a5(p4))
    :ordering (p1 ; p2 ; p3 ; p4 ; p5)
    :result p5
  }
}
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("gen.sh"), GEN).expect("gen.sh");
        std::fs::write(root.join("f.guardflow"), CHAIN).expect("flow");
        Fixture { _dir: dir, root }
    }

    fn path(&self, name: &str) -> String {
        self.root.join(name).to_string_lossy().into_owned()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(&self.root)
            .env("CALLS", self.root.join("calls"))
            .env("NO_COLOR", "1");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("guardflow runs")
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn read(db: &Path) -> Connection {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    c.busy_timeout(Duration::from_secs(30)).expect("timeout");
    c
}

fn query(db: &Path, sql: &str) -> i64 {
    read(db).query_row(sql, [], |r| r.get(0)).expect(sql)
}

fn run_ids(db: &Path) -> Vec<String> {
    let c = read(db);
    let mut s = c
        .prepare("SELECT id FROM runs ORDER BY number")
        .expect("prepare");
    let ids = s
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<Vec<String>, _>>()
        .expect("ids");
    ids
}

/// Every file under `dir`, by path, with its bytes (directories as
/// empty entries): what "left untouched" promises.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                out.insert(p.clone(), None);
                todo.push(p);
            } else {
                out.insert(p.clone(), Some(std::fs::read(&p).expect("read")));
            }
        }
    }
    out
}

/// A store whose process stopped without closing it: the database, its
/// log with committed transactions in it, its shared memory and the
/// run's lock file, copied while the writer had them open.
fn crashed_store(fx: &Fixture, dir: &Path, extra_rows: usize) -> String {
    let db = fx.root.join(".guardflow/runs.db");
    let o = fx.run(&["run", &fx.path("f.guardflow"), "-i", "goal=x"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let c = Connection::open(&db).expect("open");
    c.execute_batch("PRAGMA wal_autocheckpoint = 0")
        .expect("pragma");
    let number: i64 = c
        .query_row("SELECT max(number) FROM runs", [], |r| r.get(0))
        .expect("number");
    let body = "x".repeat(900);
    let insert = |from: usize, to: usize| {
        c.execute_batch("BEGIN").expect("begin");
        for seq in from..to {
            c.execute(
                "INSERT INTO journal (key, seq, session, at_ms, kind, path, body) VALUES (?1, ?2, 1, 0, 'note', 'main', ?3)",
                rusqlite::params![(number << 32) + seq as i64, seq as i64, body],
            )
            .expect("insert");
        }
        c.execute_batch("COMMIT").expect("commit");
    };
    insert(1000, 1000 + extra_rows);
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    // the last transactions only in the log
    insert(100_000, 100_020);
    std::fs::create_dir_all(dir).expect("mkdir");
    for name in ["runs.db", "runs.db-wal", "runs.db-shm"] {
        std::fs::copy(fx.root.join(".guardflow").join(name), dir.join(name)).expect("copy");
    }
    let locks = dir.join("runs.db.locks");
    std::fs::create_dir_all(&locks).expect("mkdir");
    for e in std::fs::read_dir(fx.root.join(".guardflow/runs.db.locks")).expect("locks") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), locks.join(e.file_name())).expect("copy lock");
    }
    drop(c);
    run_ids(&db).pop().expect("a run")
}

/// A real WAL from another SQLite database, with committed transactions.
fn foreign_wal(dir: &Path) -> Vec<u8> {
    let other = dir.join("other.db");
    let c = Connection::open(&other).expect("open");
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE accounts (name TEXT, balance INTEGER);
         INSERT INTO accounts VALUES ('alice', 10), ('bob', 20);",
    )
    .expect("other database");
    let wal = std::fs::read(dir.join("other.db-wal")).expect("its log");
    assert!(wal.len() > 4096, "{}", wal.len());
    drop(c);
    wal
}

#[test]
fn a_foreign_wal_is_moved_aside_and_never_applied() {
    let fx = Fixture::new();
    let o = fx.run(&["run", &fx.path("f.guardflow"), "-i", "goal=x"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let store = fx.root.join(".guardflow");
    let db = store.join("runs.db");
    let ids = run_ids(&db);
    assert_eq!(ids.len(), 1);
    let calls = fx.calls().len();
    let wal = foreign_wal(&fx.root);
    let db_bytes = std::fs::read(&db).expect("db");
    for command in [
        vec![
            "run".to_string(),
            fx.path("f.guardflow"),
            "-i".into(),
            "goal=y".into(),
        ],
        vec!["runs".to_string(), "--store".into(), fx.path("f.guardflow")],
    ] {
        std::fs::write(store.join("runs.db-wal"), &wal).expect("plant the log");
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let o = fx.run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let out = text(&o);
        assert!(
            out.contains("the write-ahead log beside it is not its own")
                && out.contains("it was moved aside to `"),
            "{out}"
        );
        assert!(!out.contains("left untouched"), "{out}");
        // the file it names holds the log, byte for byte
        let named = out
            .split("moved aside to `")
            .nth(1)
            .and_then(|r| r.split('`').next())
            .expect("a file named");
        assert!(named.contains("runs.db-wal.foreign-"), "{named}");
        assert_eq!(std::fs::read(named).expect("the moved log"), wal);
        std::fs::remove_file(named).expect("remove");
        assert!(!store.join("runs.db-wal").exists());
        assert_eq!(std::fs::read(&db).expect("db"), db_bytes, "{args:?}");
    }
    assert_eq!(fx.calls().len(), calls, "a generator ran");
    // the store is as it was: its run is there, and a run is recorded
    let o = fx.run(&[
        "runs",
        "--store",
        &fx.path("f.guardflow"),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&ids[0]),
        "{}",
        text(&o)
    );
    let o = fx.run(&["run", &fx.path("f.guardflow"), "-i", "goal=y"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(run_ids(&db).len(), 2);
    assert_eq!(query(&db, "SELECT count(*) FROM commits"), 10);
    // beside an empty database (which SQLite would delete it for)
    let empty = fx.root.join("empty.db");
    std::fs::write(&empty, b"").expect("touch");
    std::fs::write(fx.root.join("empty.db-wal"), &wal).expect("plant");
    let o = fx.run(&[
        "run",
        &fx.path("f.guardflow"),
        "-i",
        "goal=z",
        "--store",
        &empty.to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("moved aside to `"), "{}", text(&o));
    let moved: Vec<PathBuf> = std::fs::read_dir(&fx.root)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().contains("empty.db-wal.foreign-"))
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(std::fs::read(&moved[0]).expect("moved"), wal);
}

#[test]
fn a_log_that_is_not_a_log_is_moved_aside() {
    let fx = Fixture::new();
    let o = fx.run(&["run", &fx.path("f.guardflow"), "-i", "goal=x"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let store = fx.root.join(".guardflow");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(store.join("runs.db-wal"), &junk).expect("plant");
    let o = fx.run(&["stats", "--store", &fx.path("f.guardflow")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("it is not a write-ahead log (magic number"),
        "{}",
        text(&o)
    );
    let moved: Vec<PathBuf> = std::fs::read_dir(&store)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().contains("runs.db-wal.foreign-"))
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(std::fs::read(&moved[0]).expect("moved"), junk);
}

#[test]
fn a_corrupt_page_in_the_middle_leaves_every_file_as_it_was() {
    let fx = Fixture::new();
    let broken = fx.root.join("broken");
    let id = crashed_store(&fx, &broken, 3000);
    let db = broken.join("runs.db");
    let mut data = std::fs::read(&db).expect("db");
    let pages = data.len() / 4096;
    assert!(pages > 200, "{pages}");
    let page = pages / 2;
    for b in &mut data[page * 4096..(page + 1) * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&db, &data).expect("corrupt it");
    let before = snapshot(&broken);
    assert!(before.len() >= 5, "{before:?}");
    let store = db.to_string_lossy().into_owned();
    let o = fx.run(&[
        "run",
        &fx.path("f.guardflow"),
        "-i",
        "goal=y",
        "--store",
        &store,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("the file is corrupt (") && text(&o).contains("it is left untouched"),
        "{}",
        text(&o)
    );
    assert!(
        snapshot(&broken) == before,
        "`run` changed the store's files"
    );
    for args in [
        vec!["runs", "--store", &store],
        vec!["stats", "--store", &store],
        vec!["show", &id, "--store", &store],
        vec!["trace", &id, "--store", &store],
        vec!["export", &id, "--sft", "--store", &store],
        vec![
            "run",
            &fx.path("f.guardflow"),
            "--resume",
            &id,
            "--store",
            &store,
        ],
    ] {
        let o = fx.run(&args);
        assert!(!text(&o).contains("panicked"), "{args:?}: {}", text(&o));
        if text(&o).contains("left untouched") {
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        }
        assert!(
            snapshot(&broken) == before,
            "{args:?} changed the store's files"
        );
    }
    assert!(fx
        .calls()
        .iter()
        .all(|c| !c.contains("goal=y") && !c.contains(" y")));
}

/// The reading commands over the store at `store`, as `as_nobody` or not:
/// each succeeds and shows the run `id` and what it committed.
fn every_reader_reads(fx: &Fixture, store: &str, id: &str, as_nobody: bool) {
    for (args, want) in [
        (vec!["runs", "--store", store], id.to_string()),
        (
            vec!["show", id, "--store", store],
            "finished: succeeded".to_string(),
        ),
        (
            vec!["trace", id, "--store", store, "--format", "jsonl"],
            "\"event\":\"committed\"".to_string(),
        ),
        (
            vec!["export", id, "--sft", "--store", store],
            "\"assistant\"".to_string(),
        ),
        (vec!["stats", "--store", store], "a5".to_string()),
    ] {
        let mut c = fx.command(&args);
        if as_nobody {
            c.uid(65534).gid(65534);
        }
        let o = c.output().expect("guardflow runs");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(&want),
            "{args:?}: {}",
            text(&o)
        );
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn another_users_store_is_read_without_writing() {
    let fx = Fixture::new();
    let o = fx.run(&["run", &fx.path("f.guardflow"), "-i", "goal=x"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dir = fx.root.join(".guardflow");
    let id = run_ids(&dir.join("runs.db")).pop().expect("a run");
    // a store left by a process that stopped: its log still to apply
    let crashed = fx.root.join("crashed");
    let crashed_id = crashed_store(&fx, &crashed, 10);
    // the first as a store closed cleanly leaves it: no `-wal`, no `-shm`
    // (reading it above left empty ones)
    for name in ["runs.db-wal", "runs.db-shm"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let mut stores = vec![(dir.clone(), id), (crashed.clone(), crashed_id.clone())];
    for (d, _) in &stores {
        for e in std::fs::read_dir(d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_file() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444))
                    .expect("chmod");
            }
        }
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    }
    // as root, permission bits stop nobody: the readers run as `nobody`
    // (the store is another user's); as another user they are just read-only
    let nobody = is_root();
    if nobody {
        std::fs::set_permissions(&fx.root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    for (d, id) in stores.drain(..) {
        let before = snapshot(&d);
        let store = d.join("runs.db").to_string_lossy().into_owned();
        every_reader_reads(&fx, &store, &id, nobody);
        assert!(snapshot(&d) == before, "a reader changed {}", d.display());
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    // what only the log held was read: the crashed store's last notes
    let o = fx.run(&[
        "trace",
        &crashed_id,
        "--store",
        &crashed.join("runs.db").to_string_lossy(),
        "--format",
        "jsonl",
    ]);
    let notes = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with("\"xxx"))
        .count();
    assert_eq!(notes, 30, "{}", text(&o));
}

/// A mount point, unmounted when dropped.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount(args: &[&str], target: &Path) -> Mount {
    assert!(
        is_root(),
        "this test mounts a file system: run it as root (CI does)"
    );
    std::fs::create_dir_all(target).expect("mkdir");
    let status = Command::new("mount")
        .args(args)
        .arg(target)
        .status()
        .expect("mount runs");
    assert!(
        status.success(),
        "mount {args:?} {} failed",
        target.display()
    );
    Mount(target.to_path_buf())
}

#[test]
fn a_store_on_a_read_only_mount_is_read() {
    let fx = Fixture::new();
    let o = fx.run(&["run", &fx.path("f.guardflow"), "-i", "goal=x"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let id = run_ids(&fx.root.join(".guardflow/runs.db"))
        .pop()
        .expect("a run");
    let crashed = fx.root.join("crashed");
    let crashed_id = crashed_store(&fx, &crashed, 10);
    for (source, id) in [(fx.root.join(".guardflow"), id), (crashed, crashed_id)] {
        let target = fx.root.join("ro");
        let _ro = mount(&["--bind", "-o", "ro", &source.to_string_lossy()], &target);
        // a bind mount is read-only only once remounted so
        let status = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(&target)
            .status()
            .expect("mount");
        assert!(status.success());
        assert!(
            std::fs::write(target.join("probe"), "x").is_err(),
            "the mount is writable"
        );
        let before = snapshot(&source);
        let store = target.join("runs.db").to_string_lossy().into_owned();
        every_reader_reads(&fx, &store, &id, false);
        // and a run says it cannot write there, before any call
        let calls = fx.calls().len();
        let o = fx.run(&[
            "run",
            &fx.path("f.guardflow"),
            "-i",
            "goal=z",
            "--store",
            &store,
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("cannot be written"), "{}", text(&o));
        assert_eq!(fx.calls().len(), calls);
        assert!(snapshot(&source) == before);
    }
}

#[test]
fn an_empty_file_is_a_store_without_runs_for_every_command() {
    let fx = Fixture::new();
    let db = fx.root.join("empty.db");
    std::fs::write(&db, b"").expect("touch");
    let store = db.to_string_lossy().into_owned();
    let o = fx.run(&["runs", "--store", &store]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("no runs"),
        "{}",
        text(&o)
    );
    for args in [
        vec!["stats", "--store", &store],
        vec!["export", "--all", "--sft", "--store", &store],
        vec!["runs", "--store", &store, "--format", "json"],
    ] {
        let o = fx.run(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    }
    for args in [
        vec!["show", "20260101-000000-abcd", "--store", &store],
        vec!["trace", "20260101-000000-abcd", "--store", &store],
        vec!["export", "20260101-000000-abcd", "--sft", "--store", &store],
        vec![
            "run",
            &fx.path("f.guardflow"),
            "--resume",
            "20260101-000000-abcd",
            "--store",
            &store,
        ],
    ] {
        let o = fx.run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains("has no run `20260101-000000-abcd`"),
            "{args:?}: {}",
            text(&o)
        );
    }
    assert!(fx.calls().is_empty());
    // `run` makes it a store
    let o = fx.run(&[
        "run",
        &fx.path("f.guardflow"),
        "-i",
        "goal=x",
        "--store",
        &store,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(run_ids(&db).len(), 1);
}

#[test]
fn a_full_disk_keeps_what_the_run_acted_on_and_the_run_resumes() {
    let fx = Fixture::new();
    let small = fx.root.join("small");
    let _fs = mount(&["-t", "tmpfs", "-o", "size=4m", "tmpfs"], &small);
    let store = small.join("runs.db").to_string_lossy().into_owned();
    let fill = small.join("fill");
    let o = fx
        .command(&[
            "run",
            &fx.path("f.guardflow"),
            "-i",
            "goal=x",
            "--store",
            &store,
        ])
        .env("FILL_AT", "a3")
        .env("FILL", &fill)
        .output()
        .expect("guardflow runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("the disk is full"), "{}", text(&o));
    assert!(text(&o).contains("--resume"), "{}", text(&o));
    let db = small.join("runs.db");
    let id = run_ids(&db).pop().expect("a run");
    // a3's generator returned: its answer is kept (committed the moment
    // it returned, with the reserve's room); the pass and commit that
    // followed are kept when they fit, else the resume judges the kept
    // answer again. a4 was never called
    let committed = |db: &Path| {
        let c = read(db);
        let mut s = c
            .prepare("SELECT action FROM commits ORDER BY seq")
            .expect("prepare");
        let v = s
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<Vec<String>, _>>()
            .expect("rows");
        v
    };
    let before = committed(&db);
    assert!(
        before == ["a1", "a2", "a3"] || before == ["a1", "a2"],
        "{before:?}"
    );
    let called: Vec<String> = fx
        .calls()
        .iter()
        .map(|c| c.split('|').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(called, ["a1", "a2", "a3"]);
    // room again: the run resumes and no committed attempt is redone
    std::fs::remove_file(&fill).expect("free the disk");
    let o = fx.run(&[
        "run",
        &fx.path("f.guardflow"),
        "--resume",
        &id,
        "--store",
        &store,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let called: Vec<String> = fx
        .calls()
        .iter()
        .map(|c| c.split('|').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(called, ["a1", "a2", "a3", "a4", "a5"]);
    assert_eq!(committed(&db), ["a1", "a2", "a3", "a4", "a5"]);
    assert_eq!(
        query(&db, "SELECT count(*) FROM verdicts WHERE verdict != 'pass'"),
        0
    );
    // what was committed again has the places in the order it had: the
    // run's events are numbered 1, 2, 3, … without a gap
    assert_eq!(query(&db, "SELECT max(seq) - count(*) FROM run_journal"), 0);
}

/// A workflow with a `use`d file and `file()`/`folder()` inputs, stopped
/// while `b` waits, so that it can be resumed.
const PINNED: &str = r#"use std.{contains}
use "lib.guardflow"
input spec: Text = file("spec.txt")
input docs: [Text] = folder("docs", glob: "*.md")
generator g = cmd("sh gen.sh", timeout: 60s, env: ["CALLS", "FILL", "FILL_AT", "HOLD", "STOP"], write: ["."])
action a(s: Text) -> Text { :generate g "a {s} {docs}" :guard accepted :retry 1 }
action b(x: Text) -> Text { :generate g "b {x} spec={spec} docs={docs}" :guard accepted :retry 1 }
task main() -> Text {
  method m {
    :subtasks (p: a(spec), q: b(p))
    :ordering (p ; q)
    :result q
  }
}
"#;

fn pinned_fixture() -> (Fixture, String) {
    let fx = Fixture::new();
    std::fs::write(fx.root.join("f.guardflow"), PINNED).expect("flow");
    std::fs::write(
        fx.root.join("lib.guardflow"),
        "use std.{contains}\nguard accepted on Text = contains(\"ok\")\n",
    )
    .expect("lib");
    std::fs::write(fx.root.join("spec.txt"), "SPEC-ONE").expect("spec");
    std::fs::create_dir(fx.root.join("docs")).expect("docs");
    std::fs::write(fx.root.join("docs/a.md"), "DOC-A").expect("doc");
    std::fs::write(fx.root.join("docs/c.md"), "DOC-C").expect("doc");
    let stop = fx.root.join("stop");
    std::fs::write(&stop, "").expect("stop");
    let mut child = fx
        .command(&["run", &fx.path("f.guardflow")])
        .env("HOLD", "b")
        .env("STOP", &stop)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fx.calls().iter().any(|c| c.starts_with("b|")) {
        assert!(Instant::now() < deadline, "b was never called");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling a child this test spawned
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let _ = child.wait();
    std::fs::remove_file(&stop).expect("release the generator");
    let id = run_ids(&fx.root.join(".guardflow/runs.db"))
        .pop()
        .expect("a run");
    // the held generator's group outlives a SIGKILL for a moment; a
    // resume refuses to start beside it
    let children = fx
        .root
        .join(format!(".guardflow/runs.db.locks/{id}.children"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !guardflow::runtime::children::survivors(&children).is_empty() {
        assert!(Instant::now() < deadline, "the generator never ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    (fx, id)
}

#[test]
fn a_resume_with_changed_imports_or_inputs_is_refused_naming_each() {
    let (fx, id) = pinned_fixture();
    let flow = fx.path("f.guardflow");
    std::fs::write(
        fx.root.join("lib.guardflow"),
        "use std.{contains}\nguard accepted on Text = contains(\"ok\") && contains(\"b\")\n",
    )
    .expect("lib");
    std::fs::write(fx.root.join("spec.txt"), "SPEC-TWO").expect("spec");
    std::fs::write(fx.root.join("docs/b.md"), "DOC-B").expect("doc");
    std::fs::remove_file(fx.root.join("docs/c.md")).expect("doc");
    let calls = fx.calls().len();
    let o = fx.run(&["run", &flow, "--resume", &id]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!("run {id} started with other files than these")),
        "{out}"
    );
    let lib = std::fs::canonicalize(fx.root.join("lib.guardflow")).expect("lib");
    for line in [
        format!("  import {}: ", lib.display()),
        "  input `spec`: spec.txt: ".to_string(),
        "  input `docs`: docs/c.md: removed (was ".to_string(),
        "  input `docs`: docs/b.md: added (".to_string(),
        "--accept-changes".to_string(),
    ] {
        assert!(out.contains(&line), "{line:?} in {out}");
    }
    assert!(
        !out.contains("f.guardflow:"),
        "the workflow did not change: {out}"
    );
    assert_eq!(fx.calls().len(), calls, "a generator ran");

    // --accept-changes goes on with the files as they are, and says so
    let o = fx.run(&["run", &flow, "--resume", &id, "--accept-changes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("resumes with files changed since it started"),
        "{}",
        text(&o)
    );
    let last = fx.calls().pop().expect("b called");
    assert!(last.contains("spec=SPEC-TWO"), "{last}");
    assert!(last.contains("DOC-B") && !last.contains("DOC-C"), "{last}");
    let db = fx.root.join(".guardflow/runs.db");
    let recorded: String = read(&db)
        .query_row(
            "SELECT path FROM pins WHERE run_id = ?1 AND kind = 'accepted'",
            [&id],
            |r| r.get(0),
        )
        .expect("the accepted changes are recorded");
    assert!(recorded.contains("input `spec`: spec.txt: "), "{recorded}");
}

#[test]
fn a_resume_reads_its_inputs_as_the_run_read_them() {
    let (fx, id) = pinned_fixture();
    // the inputs' files are gone: the run goes on with what it read
    std::fs::remove_file(fx.root.join("spec.txt")).expect("spec");
    std::fs::remove_dir_all(fx.root.join("docs")).expect("docs");
    let o = fx.run(&["run", &fx.path("f.guardflow"), "--resume", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let last = fx.calls().pop().expect("b called");
    assert!(last.contains("spec=SPEC-ONE"), "{last}");
    assert!(last.contains("DOC-A") && last.contains("DOC-C"), "{last}");
}

/// A store of format 3 (before the pins) gets the `pins` and `blobs`
/// tables when first opened, keeps its runs, and a run it recorded
/// resumes as before: its workflow compared by hash.
#[test]
fn a_version_3_store_gets_the_pins_and_its_runs_resume() {
    let (fx, id) = pinned_fixture();
    let db = fx.root.join(".guardflow/runs.db");
    {
        let c = Connection::open(&db).expect("open");
        c.execute_batch(
            "DROP TRIGGER pins_append_only_update; DROP TRIGGER pins_append_only_delete;
             DROP TRIGGER blobs_append_only_update; DROP TRIGGER blobs_append_only_delete;
             DROP TABLE pins; DROP TABLE blobs; PRAGMA user_version = 3;",
        )
        .expect("make it version 3");
    }
    let o = fx.run(&["runs", "--store", &fx.path("f.guardflow")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&id),
        "{}",
        text(&o)
    );
    assert_eq!(query(&db, "PRAGMA user_version"), 4);
    assert_eq!(query(&db, "SELECT count(*) FROM pins"), 0);
    // a changed import is not known to a run recorded before format 4;
    // a changed workflow still is
    let flow = fx.path("f.guardflow");
    let original = std::fs::read_to_string(&flow).expect("flow");
    std::fs::write(&flow, format!("{original}\n// edited\n")).expect("edit");
    let o = fx.run(&["run", &flow, "--resume", &id]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("changed since run"), "{}", text(&o));
    std::fs::write(&flow, original).expect("restore");
    let o = fx.run(&["run", &flow, "--resume", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // the triggers hold for the new tables too
    let c = Connection::open(&db).expect("open");
    c.execute("INSERT INTO blobs (hash, content) VALUES ('h', x'00')", [])
        .expect("append");
    assert!(c.execute("DELETE FROM blobs", []).is_err());
}

/// A log of this very store from before it grew (a backup's, or one
/// left when the database was restored) would cut off what was committed
/// since: it is moved aside.
#[test]
fn a_stale_wal_of_this_store_is_moved_aside() {
    let fx = Fixture::new();
    let image = fx.root.join("image");
    let id = crashed_store(&fx, &image, 10);
    let old = std::fs::read(image.join("runs.db-wal")).expect("old log");
    let db = fx.root.join(".guardflow/runs.db");
    {
        let c = Connection::open(&db).expect("open");
        let number: i64 = c
            .query_row("SELECT max(number) FROM runs", [], |r| r.get(0))
            .expect("number");
        c.execute_batch("BEGIN").expect("begin");
        for seq in 200_000..202_000i64 {
            c.execute(
                "INSERT INTO journal (key, seq, session, at_ms, kind, path, body) VALUES (?1, ?2, 1, 0, 'note', 'main', ?3)",
                rusqlite::params![(number << 32) + seq, seq, "y".repeat(900)],
            )
            .expect("insert");
        }
        c.execute_batch("COMMIT").expect("commit");
    }
    assert!(!fx.root.join(".guardflow/runs.db-wal").exists());
    let rows = query(&db, "SELECT count(*) FROM journal");
    std::fs::write(fx.root.join(".guardflow/runs.db-wal"), &old).expect("plant");
    let o = fx.run(&["show", &id, "--store", &fx.path("f.guardflow")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("it is older than the database: it would cut the database from "),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("moved aside to `"), "{}", text(&o));
    assert!(!fx.root.join(".guardflow/runs.db-wal").exists());
    assert_eq!(query(&db, "SELECT count(*) FROM journal"), rows);
}
