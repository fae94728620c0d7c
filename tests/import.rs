//! `guardflow import`: atomicguard's JSON workflows (written for these
//! tests in its format, under `tests/fixtures/import/`) as guardflow
//! files: each import snapshot-tested and checked, one run end to end
//! with recorded answers, the refusals with their places, and no panic on
//! any JSON.

use std::path::{Path, PathBuf};
use std::time::Duration;

use guardflow::check;
use guardflow::import::{self, Source};
use proptest::prelude::*;

use crate::support::{guardflow, render_all, run_bounded};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// Imports a fixture through the binary into a temporary file; the
/// imported text and what was printed on standard error.
fn import_ok(name: &str) -> (String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.guardflow");
    let mut cmd = guardflow();
    cmd.arg("import").arg(fixture(name)).arg("-o").arg(&out);
    let ran = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let text = std::fs::read_to_string(&out).expect("the imported file");
    // it checks cleanly: no error, no warning
    let checked = check::check_source(&out.to_string_lossy(), &text);
    assert!(
        checked.diagnostics.is_empty(),
        "{}\n{text}",
        render_all(&checked)
    );
    // and it is in the canonical layout
    assert_eq!(
        guardflow::fmt::format("out.guardflow", &text).expect("formats"),
        text
    );
    (text, ran.stderr)
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({ snapshot_path => "fixtures/import/snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, text);
    });
}

/// Imports a fixture that must be refused: exit status 2, nothing
/// written; the messages.
fn import_refused(name: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.guardflow");
    let mut cmd = guardflow();
    cmd.arg("import").arg(fixture(name)).arg("-o").arg(&out);
    let ran = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(ran.code, Some(2), "{}", ran.all());
    assert!(!out.exists(), "a refused import wrote {}", out.display());
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    assert!(ran.stderr.contains("nothing was written"), "{}", ran.stderr);
    // the fixture's directory as the snapshot sees it
    ran.stderr
        .replace(&fixture("").to_string_lossy().into_owned(), "FIXTURES/")
}

#[test]
fn a_single_action_pair_takes_the_specification_as_its_prompt() {
    let (text, _) = import_ok("single.json");
    assert!(
        text.contains(":generate ollama \"\"\"\n    {specification}"),
        "{text}"
    );
    assert!(text.contains(":retry 2"), "{text}");
    assert!(!text.contains(":ordering"), "{text}");
    snapshot("single", &text);
}

#[test]
fn a_chain_with_requires_becomes_a_sequence_with_outputs_interpolated() {
    let (text, stderr) = import_ok("chain.json");
    assert!(
        text.contains(":ordering (g_grammar ; g_test ; g_impl)"),
        "{text}"
    );
    // `{grammar}`, `{test_code}` and `{g_grammar}` name earlier outputs
    assert!(
        text.contains("{g_test}") && text.contains("{g_grammar}"),
        "{text}"
    );
    assert!(
        text.contains("base_url: \"https://api.openai.com/v1\""),
        "{text}"
    );
    // a placeholder that names nothing stays text, and is said
    assert!(text.contains("\\{unknown\\}"), "{text}");
    assert!(
        stderr.contains("`{unknown}` in `prompt` names nothing"),
        "{stderr}"
    );
    snapshot("chain", &text);
}

#[test]
fn independent_pairs_fork_and_join() {
    let (text, _) = import_ok("diamond.json");
    assert!(
        text.contains(":ordering (g_design ; (g_docs || g_test) ; g_impl)"),
        "{text}"
    );
    // the pair requires three; the tests come from the first of them
    assert!(text.contains(":guard dynamic_test(g_test)"), "{text}");
    snapshot("diamond", &text);
}

#[test]
fn every_supported_guard_type_maps_to_the_standard_library() {
    let (text, _) = import_ok("guards.json");
    for expected in [
        ":guard python_syntax\n",
        ":guard names_defined\n",
        ":guard mypy(strict: true)\n",
        ":guard human(prompt: \"REVIEW THE CODE: approve?\")",
        "timeout: 2500ms",
        ":guard python_syntax && names_defined && human(prompt: \"LOOK AT IT: approve?\")",
        "any(human(prompt: \"HUMAN REVIEW REQUIRED: approve?\"), mypy)",
        "majority(python_syntax, names_defined, mypy)",
        "par(",
        "temperature: 0.2, timeout: 30s",
        "api_key_env: \"HF_TOKEN\"",
        ":max-tokens 2048",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
    snapshot("guards", &text);
}

#[test]
fn templates_come_from_the_prompts_file_beside_the_workflow() {
    let (text, _) = import_ok("templates/workflow.json");
    for expected in [
        ":role \"You write pytest tests before any code exists.\"",
        "# CONSTRAINTS",
        "# CONTEXT\n    Python 3.11",
        "# DEPENDENCIES\n    ## g_test\n    {g_test}",
        "REJECTED:\n    {feedback}\n    Fix exactly that; braces such as \\{this\\} stay.",
        "# HISTORY (Context Refinement)\n    GUARD REJECTION:",
        ":feedback all",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
    snapshot("templates", &text);
}

#[test]
fn without_output_the_import_is_printed_and_prompts_may_be_named() {
    let (written, _) = import_ok("templates/workflow.json");
    let mut cmd = guardflow();
    cmd.arg("import")
        .arg(fixture("templates/workflow.json"))
        .arg("--prompts")
        .arg(fixture("templates/prompts.json"));
    let ran = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(ran.stdout, written);
    // a prompts file named explicitly is read instead of the one beside
    let dir = tempfile::tempdir().expect("tempdir");
    let other = dir.path().join("other.json");
    std::fs::write(&other, r#"{"g_test": {"task": "Other task."}}"#).expect("write");
    let mut cmd = guardflow();
    cmd.arg("import")
        .arg(fixture("templates/workflow.json"))
        .arg("--prompts")
        .arg(&other);
    let ran = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(ran.stdout.contains("Other task."), "{}", ran.stdout);
    assert!(
        !ran.stdout.contains("You write pytest tests"),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_map_of_workflows_becomes_one_task_each() {
    let (text, _) = import_ok("collection.json");
    assert!(
        text.contains("task tdd_counter() -> Code<python>"),
        "{text}"
    );
    assert!(
        text.contains("task tdd_greeting() -> Code<python>"),
        "{text}"
    );
    assert!(
        text.contains("action tdd_counter_g_impl(g_test: Code<python>)"),
        "{text}"
    );
    snapshot("collection", &text);
}

#[test]
fn guardflow_check_accepts_every_import() {
    for name in [
        "single.json",
        "chain.json",
        "diamond.json",
        "guards.json",
        "templates/workflow.json",
        "collection.json",
        "run.json",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.guardflow");
        let mut cmd = guardflow();
        cmd.arg("import").arg(fixture(name)).arg("-o").arg(&out);
        let ran = run_bounded(cmd, Duration::from_secs(60));
        assert_eq!(ran.code, Some(0), "{name}: {}", ran.all());
        let mut cmd = guardflow();
        cmd.arg("check").arg("--deny-warnings").arg(&out);
        let ran = run_bounded(cmd, Duration::from_secs(60));
        assert_eq!(ran.code, Some(0), "{name}: {}", ran.all());
    }
}

/// The imported workflow runs: recorded answers stand in for the model,
/// while the guards are real (python3 reads the names, pytest runs the
/// tests against `implementation`).
#[test]
fn an_imported_workflow_runs_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("mean.guardflow");
    let mut cmd = guardflow();
    cmd.arg("import")
        .arg(fixture("run.json"))
        .arg("-o")
        .arg(&out);
    let ran = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let mut cmd = guardflow();
    cmd.current_dir(dir.path())
        .arg("run")
        .arg(&out)
        .arg("--replay")
        .arg(fixture("run.jsonl"))
        .arg("--json");
    let ran = run_bounded(cmd, Duration::from_secs(120));
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let attempts = ran.attempts();
    let of = |action: &str| -> Vec<&serde_json::Value> {
        attempts.iter().filter(|a| a["action"] == action).collect()
    };
    let tests = of("g_test");
    assert_eq!(tests.len(), 2, "{}", ran.all());
    // atomicguard's `import` guard: `mean` is used but never imported
    let fb = tests[0]["feedback"].as_str().unwrap_or("");
    assert!(
        fb.contains("never defined or imported") && fb.contains("line 2: mean"),
        "{}",
        tests[0]
    );
    let code = of("g_impl");
    assert_eq!(code.len(), 2, "{}", ran.all());
    // `dynamic_test`: pytest ran the accepted tests against the code
    let fb = code[0]["feedback"].as_str().unwrap_or("");
    assert!(fb.contains("assert 6 == 2"), "{}", code[0]);
    assert!(ran.stdout.contains("sum(xs) / len(xs)"), "{}", ran.stdout);
}

#[test]
fn unsupported_guards_and_generators_are_refused_with_their_place() {
    let err = import_refused("refused.json");
    for expected in [
        "workflow `Refused`, action pair `ap_analysis`, field `guard` (at /action_pairs/ap_analysis/guard): the guard type `analysis` has no guardflow equivalent",
        "field `generator` (at /action_pairs/ap_analysis/generator): the generator `AnalysisGenerator` has no guardflow equivalent",
        "field `output_type`",
        "field `workdir` (at /action_pairs/ap_patch/guard_config/workdir)",
        "the placeholder `{ap_test}` names the output of `ap_test`, which `ap_patch` does not require",
        "field `api_key`",
        "a composite guard with no guards",
        "not imported (7 problems)",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
    // the key itself is never repeated
    assert!(!err.contains("sk-not-a-real-key"), "{err}");
    insta::with_settings!({ snapshot_path => "fixtures/import/snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("refused", err);
    });
}

#[test]
fn malformed_json_is_refused_with_its_line_and_column() {
    let err = import_refused("malformed.json");
    assert!(
        err.contains("not valid JSON: trailing comma at line 4 column 31"),
        "{err}"
    );
}

#[test]
fn schema_violations_are_refused_with_their_pointers() {
    let err = import_refused("schema.json");
    for expected in [
        "at /rmax): does not match atomicguard's workflow schema: 0 is less than the minimum of 1",
        "field `name` (at /name)",
        "(at /provider)",
        "action pair `g_test`, field `guard` (at /action_pairs/g_test/guard)",
        "field `requires` (at /action_pairs/g_test/requires)",
        "action pair `g_impl` (at /action_pairs/g_impl): does not match atomicguard's workflow schema: \"guard\" is a required property",
        "not imported (6 problems)",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
}

#[test]
fn a_cycle_of_requires_is_refused() {
    let err = import_refused("cycle.json");
    assert!(err.contains("the requires form a cycle"), "{err}");
    assert!(err.contains("b → c → a → b"), "{err}");
}

#[test]
fn an_import_is_written_whole_or_not_at_all() {
    // a refused import leaves an existing file as it was
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.guardflow");
    std::fs::write(&out, "// mine\n").expect("write");
    let mut cmd = guardflow();
    cmd.arg("import")
        .arg(fixture("refused.json"))
        .arg("-o")
        .arg(&out);
    let ran = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(ran.code, Some(2), "{}", ran.all());
    assert_eq!(std::fs::read_to_string(&out).expect("read"), "// mine\n");
    // no temporary file is left beside it
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        (-1e6f64..1e6).prop_map(|f| serde_json::json!(f)),
        "[ -~\n{}\"\\\\]{0,20}".prop_map(serde_json::Value::String),
        prop_oneof![
            Just("syntax"),
            Just("import"),
            Just("dynamic_test"),
            Just("human"),
            Just("type"),
            Just("composite"),
            Just("g_a"),
            Just("g_b"),
            Just("{g_a}"),
        ]
        .prop_map(|s| serde_json::Value::String(s.to_string())),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("name".to_string()),
            Just("action_pairs".to_string()),
            Just("guard".to_string()),
            Just("guards".to_string()),
            Just("requires".to_string()),
            Just("prompt".to_string()),
            Just("guard_config".to_string()),
            Just("generator_config".to_string()),
            Just("rmax".to_string()),
            Just("g_a".to_string()),
            Just("g_b".to_string()),
            "[a-z_]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A workflow-shaped document: pairs with random guards, requires and
/// prompts.
fn workflow_doc() -> impl Strategy<Value = serde_json::Value> {
    let guard = prop_oneof![
        Just(serde_json::json!({"guard": "syntax"})),
        Just(serde_json::json!({"guard": "import"})),
        Just(serde_json::json!({"guard": "type"})),
        Just(serde_json::json!({"guard": "human", "human_prompt_title": "T \"q\" {x}"})),
        Just(serde_json::json!({"guard": "dynamic_test"})),
        Just(serde_json::json!({"guard": "composite", "guards": ["syntax", "import"]})),
        Just(
            serde_json::json!({"guard": "composite", "guards": {"compose": "parallel", "policy": "majority_pass", "guards": ["syntax", {"type": "type"}]}})
        ),
        Just(serde_json::json!({"guard": "custom_thing"})),
    ];
    let text = "[ -~\n\r\t{}\"\\\\]{0,40}";
    let pair = (
        guard,
        text,
        prop::collection::vec(0usize..5, 0..3),
        any::<bool>(),
    );
    (prop::collection::vec(pair, 1..5), text, 1u64..5).prop_map(|(pairs, spec, rmax)| {
        let ids = ["g_a", "g_b", "g_c", "g_d", "g_e"];
        let mut map = serde_json::Map::new();
        for (i, (mut g, prompt, reqs, with_prompt)) in pairs.into_iter().enumerate() {
            if with_prompt {
                g["prompt"] = serde_json::Value::String(prompt);
            } else {
                g["description"] = serde_json::Value::String(prompt);
            }
            // requires only earlier pairs (cycles are refused elsewhere)
            let reqs: Vec<&str> = reqs.iter().filter(|&&r| r < i).map(|&r| ids[r]).collect();
            if !reqs.is_empty() {
                g["requires"] = serde_json::json!(reqs);
            }
            map.insert(ids[i].to_string(), g);
        }
        let mut doc = serde_json::json!({"name": "fuzz", "rmax": rmax, "action_pairs": map});
        doc["specification"] = serde_json::Value::String(spec);
        doc
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// No JSON makes the importer panic; bytes that are not JSON neither.
    #[test]
    fn no_panic_on_arbitrary_json(doc in json_value(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let text = doc.to_string();
        let _ = import::import(Source { name: "fuzz.json", text: &text }, None);
        let text = String::from_utf8_lossy(&bytes);
        let _ = import::import(Source { name: "fuzz.json", text: &text }, Some(Source { name: "prompts.json", text: &text }));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// A workflow that imports checks cleanly: an import that does not
    /// check is a bug.
    #[test]
    fn every_import_checks(doc in workflow_doc()) {
        let text = doc.to_string();
        match import::import(Source { name: "fuzz.json", text: &text }, None) {
            Ok(imported) => {
                let checked = check::check_source("fuzz.guardflow", &imported.text);
                prop_assert!(checked.diagnostics.is_empty(), "{}\n{}\n{}", text, render_all(&checked), imported.text);
            }
            // refused, never for a bug of the importer
            Err(errors) => {
                for e in &errors {
                    prop_assert!(!e.message.contains("bug"), "{}\n{}", text, e);
                }
            }
        }
    }
}
