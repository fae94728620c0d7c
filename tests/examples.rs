//! Every example checks clean.

use crate::support::{check_path, guardflow_files, render_all};

#[test]
fn every_example_checks_without_findings() {
    let files = guardflow_files("examples");
    assert!(files.len() >= 4, "examples/ has {} workflows", files.len());
    for path in files {
        let checked = check_path(&path);
        assert!(
            checked.diagnostics.is_empty(),
            "{}:\n{}",
            path.display(),
            render_all(&checked)
        );
    }
}
