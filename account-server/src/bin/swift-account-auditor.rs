//! `swift-account-auditor CONFIG [once] [-v] [--devices D1,D2]`: opens
//! every account database on this node's devices, checks its totals
//! against its per-policy totals and quarantines those SQLite cannot read,
//! each `interval` seconds (`[account-auditor]` of account-server.conf), or
//! one pass with `once` / `--once` / `-o`.

fn main() {
    common::daemon::main::<common::db::auditor::AccountAuditor>()
}
