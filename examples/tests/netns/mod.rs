//! Running a test inside a network namespace of its own: the test binary
//! runs the one test again under `unshare --net` (with `--map-root-user`
//! when not root), where only loopback exists; the re-run brings `lo` up and
//! checks it is alone. The library examples use [`in_namespace`]; the
//! browser and TURN tests build their own checks around [`inside`] and
//! [`rerun`].
//!
//! ```ignore
//! #[test]
//! fn talks_on_loopback() {
//!     if !netns::in_namespace("talks_on_loopback") {
//!         return; // the run inside passed
//!     }
//!     // ... only loopback here
//! }
//! ```

use std::ffi::OsStr;
use std::process::{Command, ExitStatus};

/// Set in the re-run inside the namespace.
const INNER: &str = "CHUNKSWARM_NETNS_INNER";

/// Whether this is the run inside the namespace; there it brings loopback
/// up and asserts that no other interface exists. Outside, runs
/// `test_name` of this test binary again in a new network namespace and
/// asserts that it passed, then returns `false`.
pub(crate) fn in_namespace(test_name: &str) -> bool {
    if inside() {
        return true;
    }
    let status = rerun(
        &[test_name, "--exact", "--nocapture", "--test-threads=1"],
        &[],
    );
    assert!(
        status.success(),
        "{test_name} inside a network namespace failed ({status}); see its output above. \
         If unshare itself failed, run as root or enable unprivileged user namespaces"
    );
    false
}

/// Whether this process is the re-run inside a namespace. There it brings
/// loopback up and asserts that loopback is the only interface.
pub(crate) fn inside() -> bool {
    if std::env::var_os(INNER).is_none() {
        return false;
    }
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("cannot run ip (iproute2)");
    assert!(up.success(), "ip link set lo up failed: {up}");
    // This process's namespace (sysfs would show the mounter's).
    let devices = std::fs::read_to_string("/proc/self/net/dev").expect("cannot read net/dev");
    let interfaces: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|line| Some(line.split_once(':')?.0.trim()))
        .collect();
    assert_eq!(interfaces, ["lo"], "not a fresh network namespace");
    true
}

/// Runs this test binary again with `args` and the variables `envs` in a
/// new network namespace, where [`inside`] is true, and returns how it
/// ended.
pub(crate) fn rerun(args: &[impl AsRef<OsStr>], envs: &[(&str, &OsStr)]) -> ExitStatus {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let mut unshare = Command::new("unshare");
    if !root {
        // An unprivileged user namespace maps us to root inside.
        unshare.arg("--map-root-user");
    }
    unshare
        .args(["--net", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(args)
        .env(INNER, "1")
        .envs(envs.iter().copied())
        .status()
        .expect("cannot run unshare (util-linux)")
}
