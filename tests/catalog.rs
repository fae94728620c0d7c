//! The guard catalog (`std/catalog.guardflow`) through the engine: each
//! guard declared, checked and registered as a workflow uses it, with a
//! passing and a failing artifact and the exact feedback a model gets.

use std::path::Path;
use std::process::Command;

use guardflow::engine::{Engine, Verdict};
use guardflow::runtime::Value;

/// Evaluates `guard g on SUBJECT = EXPR` (after `use std.{USES}`) of a
/// workflow in `dir` on `artifact`.
fn judge(dir: &Path, uses: &str, subject: &str, expr: &str, artifact: &str) -> Verdict {
    let file = dir.join("g.guardflow");
    std::fs::write(
        &file,
        format!("use std.{{{uses}}}\nguard g on {subject} = {expr}\n"),
    )
    .expect("writes the workflow");
    let engine = Engine::new();
    let workflow = engine
        .compile_file(&file)
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
    let rt = guardflow::engine::runtime().expect("runtime");
    rt.block_on(engine.evaluate_guard(&workflow, "g", &Value::String(artifact.into())))
        .expect("evaluates")
}

fn feedback(v: Verdict) -> String {
    match v {
        Verdict::Fail(f) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => "catalog/snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

const RULES: &str =
    r#"{ "app.domain": [], "app.api": ["app.domain"], "app.cli": ["app.api", "app.domain"] }"#;

#[test]
fn layers_pass_imports_the_rules_allow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let code =
        "import os\nfrom app.domain.models import User\nfrom . import views\nimport requests\n";
    let v = judge(
        dir.path(),
        "layers",
        "Text",
        &format!(r#"layers("python", "app.api.routes", {RULES})"#),
        code,
    );
    assert_eq!(v, Verdict::Pass);
}

#[test]
fn layers_name_each_offending_import_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let code = "import json\nfrom app.api.routes import router\nfrom ..cli import main\nfrom .models import User\nimport app.cli.commands as c\n";
    let f = feedback(judge(
        dir.path(),
        "layers",
        "Text",
        &format!(r#"layers("python", "app.domain.service", {RULES})"#),
        code,
    ));
    snapshot("layers_domain_imports_upward", &f);
    assert!(f.contains("line 2: `from app.api.routes import router` imports `app.api.routes` (layer `app.api`)"), "{f}");
    assert!(f.contains("line 3: "), "{f}");
    assert!(!f.contains("line 4"), "its own layer is allowed: {f}");
    // a module in no layer is the workflow's mistake
    let v = judge(
        dir.path(),
        "layers",
        "Text",
        &format!(r#"layers("python", "lib.util", {RULES})"#),
        code,
    );
    assert!(
        matches!(v, Verdict::Fatal(ref m) if m.contains("`lib.util` is in no layer")),
        "{v:?}"
    );
}

#[test]
fn layers_read_typescript_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = r#"{ "src/ui": ["src/core"], "src/core": [] }"#;
    let f = feedback(judge(
        dir.path(),
        "layers",
        "Text",
        &format!(r#"layers("ts", "src/core/price", {rules})"#),
        "import { x } from 'src/core/tax';\nimport { Button } from 'src/ui/button';\n",
    ));
    assert_eq!(
        f,
        "layers: `src/core/price` breaks a layer rule:\n- line 2: `import { Button } from 'src/ui/button';` imports `src/ui/button` (layer `src/ui`), which layer `src/core` may not import (it may import no other layer)"
    );
}

const GOOD_DIFF: &str = "diff --git a/src/calc.py b/src/calc.py
index 83db48f..bf269f4 100644
--- a/src/calc.py
+++ b/src/calc.py
@@ -1,3 +1,3 @@
 def add(a, b):
--- a comment line that looks like a header
+    return a + b
 
diff --git a/tests/test_new.py b/tests/test_new.py
new file mode 100644
--- /dev/null
+++ b/tests/test_new.py
@@ -0,0 +1 @@
+def test_add(): assert True
";

#[test]
fn diff_paths_pass_a_diff_inside_the_allowed_globs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = judge(
        dir.path(),
        "diff_paths",
        "Text",
        r#"diff_paths(["src/**", "tests/*.py"])"#,
        GOOD_DIFF,
    );
    assert_eq!(v, Verdict::Pass);
}

#[test]
fn diff_paths_list_every_path_outside_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = "--- a/src/ok.py
+++ b/src/ok.py
@@ -1 +1 @@
-x
+y
--- a/../outside.txt
+++ b/../outside.txt
@@ -1 +1 @@
-a
+b
--- /dev/null
+++ /etc/cron.d/job
@@ -0,0 +1 @@
+* * * * * root sh
diff --git a/src/old.py b/.github/workflows/ci.yml
similarity index 100%
rename from src/old.py
rename to .github/workflows/ci.yml
--- a/setup.py
+++ /dev/null
@@ -1 +0,0 @@
-gone
";
    let f = feedback(judge(
        dir.path(),
        "diff_paths",
        "Text",
        r#"diff_paths(["src/**"])"#,
        bad,
    ));
    snapshot("diff_paths_outside", &f);
    assert!(
        f.starts_with("diff_paths: the diff touches 4 paths it may not (allowed: `src/**`):"),
        "{f}"
    );
    let f = feedback(judge(
        dir.path(),
        "diff_paths",
        "Text",
        r#"diff_paths(["src/**"])"#,
        "I changed src/calc.py for you.",
    ));
    assert!(f.starts_with("diff_paths: no file headers found"), "{f}");
}

const CODE: &str = "\"\"\"A calculator.\"\"\"\n\ndef add(a, b):\n    return a + b\n\n@cache\ndef mul(a, b):\n    return a * b\n\nclass Stack:\n    def push(self, x):\n        pass\n\ndef _helper():\n    pass\n";

const DOC: &str = "# calc\n\n## `add(a, b)`\nAdds.\n\n- `mul(a, b)`: multiplies\n- `Stack`: a stack\n  - `Stack.push(x)`: pushes\n";

#[test]
fn docs_match_passes_code_its_documentation_lists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let doc = format!("{DOC:?}");
    let v = judge(
        dir.path(),
        "docs_match",
        "Text",
        &format!("docs_match({doc})"),
        CODE,
    );
    assert_eq!(v, Verdict::Pass);
    let code = format!("{CODE:?}");
    let v = judge(
        dir.path(),
        "documents",
        "Text",
        &format!("documents({code})"),
        DOC,
    );
    assert_eq!(v, Verdict::Pass);
}

#[test]
fn docs_match_lists_missing_and_extra_symbols() {
    let dir = tempfile::tempdir().expect("tempdir");
    let doc = format!(
        "{:?}",
        "## `add(a, b)`\n- `sub(a, b)`: subtracts\n- `Stack`\n"
    );
    let f = feedback(judge(
        dir.path(),
        "docs_match",
        "Text",
        &format!("docs_match({doc})"),
        CODE,
    ));
    assert_eq!(
        f,
        "docs_match: the code's public symbols do not match the documentation:\n- public in the code but not documented: `mul` (function at line 7 of the code)\n- documented but not public in the code: `sub` (line 2 of the documentation)"
    );
    let code = format!(
        "{:?}",
        "__all__ = ['add', 'gone']\ndef add(): pass\ndef other(): pass\n"
    );
    let f = feedback(judge(
        dir.path(),
        "documents",
        "Text",
        &format!("documents({code})"),
        "- `add`\n- `other`\n",
    ));
    assert_eq!(
        f,
        "documents: the documentation does not match the code's public symbols:\n- public in the code but not documented: `gone` (name at line 1 of the code)\n- documented but not public in the code: `other` (line 2 of the documentation)"
    );
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository with one commit: `check.sh` (a hook script) and `README`.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(
        dir.path().join("check.sh"),
        "#!/bin/sh\n# every staged Python file has no TODO\nfor f in $(git diff --cached --name-only -- '*.py'); do\n  if grep -n TODO \"$f\"; then echo \"$f: remove the TODO\" >&2; exit 1; fi\ndone\n",
    )
    .expect("writes");
    std::fs::write(dir.path().join("README"), "hi\n").expect("writes");
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "init"]);
    dir
}

#[test]
fn precommit_runs_the_hooks_on_the_staged_change_in_a_worktree() {
    let dir = repo();
    let expr = r#"precommit("src/calc.py", ["sh check.sh", "python3 -m py_compile src/calc.py"])"#;
    let v = judge(
        dir.path(),
        "precommit",
        "Text",
        expr,
        "def add(a, b):\n    return a + b\n",
    );
    assert_eq!(v, Verdict::Pass);
    // the workspace was not touched, no worktree is left
    assert!(!dir.path().join("src").exists());
    assert_eq!(
        git(dir.path(), &["status", "--porcelain"]),
        "?? g.guardflow\n"
    );
    assert_eq!(git(dir.path(), &["worktree", "list"]).lines().count(), 1);

    let f = feedback(judge(
        dir.path(),
        "precommit",
        "Text",
        expr,
        "def add(a, b):\n    # TODO\n    return a + b\n",
    ));
    assert_eq!(
        f,
        "precommit: the hook `sh check.sh` failed (status 1) on `src/calc.py`:\nstderr:\nsrc/calc.py: remove the TODO\nstdout:\n2:    # TODO"
    );
    let f = feedback(judge(
        dir.path(),
        "precommit",
        "Text",
        expr,
        "def add(a, b)\n",
    ));
    assert!(
        f.starts_with("precommit: the hook `python3 -m py_compile src/calc.py` failed (status 1)"),
        "{f}"
    );
    assert!(f.contains("SyntaxError"), "{f}");
    assert_eq!(git(dir.path(), &["worktree", "list"]).lines().count(), 1);
    assert!(!dir.path().join("src").exists());
}

#[test]
fn precommit_hooks_cannot_write_the_repository() {
    let dir = repo();
    let expr = r#"precommit("x.txt", ["touch \"$(git rev-parse --git-common-dir)/hooks/owned\""])"#;
    let f = feedback(judge(dir.path(), "precommit", "Text", expr, "x\n"));
    assert!(f.starts_with("precommit: the hook `touch "), "{f}");
    assert!(f.contains("Permission denied"), "{f}");
    assert!(!dir.path().join(".git/hooks/owned").exists());
    let expr = r#"precommit("../x.txt", ["true"])"#;
    let v = judge(dir.path(), "precommit", "Text", expr, "x\n");
    assert!(
        matches!(v, Verdict::Fatal(ref m) if m.contains("goes up with `..`")),
        "{v:?}"
    );
}

#[test]
fn precommit_without_hooks_runs_the_repository_s_own_pre_commit_hook() {
    use std::os::unix::fs::PermissionsExt;
    let dir = repo();
    let expr = r#"precommit("src/calc.py")"#;
    let v = judge(dir.path(), "precommit", "Text", expr, "x = 1\n");
    assert!(
        matches!(v, Verdict::Fatal(ref m) if m.contains("has no executable")),
        "{v:?}"
    );
    let hook = dir.path().join(".git/hooks/pre-commit");
    std::fs::write(&hook, "#!/bin/sh\nexec sh check.sh\n").expect("writes the hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_eq!(
        judge(dir.path(), "precommit", "Text", expr, "x = 1\n"),
        Verdict::Pass
    );
    let f = feedback(judge(
        dir.path(),
        "precommit",
        "Text",
        expr,
        "x = 1  # TODO\n",
    ));
    assert!(f.contains("failed (status 1) on `src/calc.py`"), "{f}");
    assert!(f.contains("src/calc.py: remove the TODO"), "{f}");
}
