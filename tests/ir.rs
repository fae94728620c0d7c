//! The checked program survives a JSON round trip, and foreign versions
//! are refused.

use guardflow::check::ir::{Program, IR_VERSION};

use crate::support::{check_path, guardflow_files};

#[test]
fn every_example_round_trips_through_json() {
    // the passing test programs too: maps, `Map<T>` and `Program`
    let mut files = guardflow_files("examples");
    files.extend(guardflow_files("tests/pass"));
    for path in files {
        let checked = check_path(&path);
        let program = checked
            .program
            .unwrap_or_else(|| panic!("{} has errors", path.display()));
        let json = program.to_json();
        let back = Program::from_json(&json).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(back, program, "{}", path.display());
        assert_eq!(back.to_json(), json);
    }
}

#[test]
fn another_version_is_refused_with_a_reason() {
    let path = &guardflow_files("examples")[0];
    let json = check_path(path).program.expect("clean").to_json();
    let other = json.replacen(
        &format!("\"version\": {IR_VERSION}"),
        &format!("\"version\": {}", IR_VERSION + 1),
        1,
    );
    let err = Program::from_json(&other).expect_err("a future version must be refused");
    assert!(err.contains("version"), "{err}");
    assert!(Program::from_json("{not json").is_err());
}
