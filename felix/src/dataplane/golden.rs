//! Golden-file assertions for unit tests: `felix/tests/golden/<name>`.
//! Run with `UPDATE_GOLDEN=1` to (re)write the files, then review the diff.

use std::path::PathBuf;

pub fn assert_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading golden file {}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "output differs from golden file {} (UPDATE_GOLDEN=1 regenerates it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}
