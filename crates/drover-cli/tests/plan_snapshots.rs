//! Data-driven planner tests: every inventory in `testdata/plans/` is planned by the real binary
//! and its plan document compared with a reviewed snapshot. Every plan is also replayed through
//! the core's independent checker.

use std::path::Path;
use std::process::Command;

fn drover() -> Command {
    Command::new(env!("CARGO_BIN_EXE_drover"))
}

#[test]
fn plan_documents_match_their_snapshots() {
    insta::glob!("../../../testdata/plans", "*.yaml", |path| {
        let output = drover()
            .args(["plan", "-o", "yaml", "-i"])
            .arg(path)
            .output()
            .unwrap();
        let code = output.status.code().unwrap();
        assert!(
            code == 0 || code == 3,
            "{}: exit {code}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let document = String::from_utf8(output.stdout).unwrap();
        insta::assert_snapshot!(document);
    });
}

#[test]
fn every_feasible_plan_passes_the_independent_checker() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/plans");
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        let cluster = drover_schema::inventory::load_inventory(&path).unwrap();
        let plan = drover_core::plan(&cluster);
        let violations = drover_core::check::check_plan(&cluster, &plan);
        assert!(violations.is_empty(), "{}: {violations:?}", path.display());
    }
}
