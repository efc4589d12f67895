//! Building the JavaScript package of `chunkswarm-wasm` for the demo page.
//!
//! [`ensure`] rebuilds the package when a source file is newer than the last
//! build (or the package is missing), with `chunkswarm-wasm/build-pkg.sh`.
//! Before that it makes sure the tools are there: the
//! `wasm32-unknown-unknown` target (`rustup target add`) and
//! `wasm-bindgen-cli` at exactly the version of the `wasm-bindgen` crate in
//! `Cargo.lock` (`cargo install wasm-bindgen-cli --version =X`; the CLI and
//! the crate must match).
//!
//! The nested cargo uses its own target folder (`target/chunkswarm-demo/`),
//! so running it from `cargo run` or `cargo test`, which hold the lock on
//! the main one, does not wait forever.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

/// The file written after a successful build; its time is the build's.
const STAMP: &str = ".chunkswarm-build-stamp";
/// Files a usable package must hold.
pub const PKG_FILES: &[&str] = &["chunkswarm_wasm.js", "chunkswarm_wasm_bg.wasm"];

/// Why the package could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PkgError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// `Cargo.lock` names no `wasm-bindgen` version.
    #[error("{0} names no wasm-bindgen version")]
    NoBindgenVersion(PathBuf),
    /// A tool could not be started.
    #[error("cannot run {tool}: {source} ({hint})")]
    Spawn {
        /// The program.
        tool: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// A tool ran and failed.
    #[error("`{command}` failed with {status}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The build ran but the package lacks a file.
    #[error("the build left no {0}")]
    Missing(PathBuf),
    /// Building is off and there is no package.
    #[error(
        "no wasm package in {0} (run without --no-build, or build it with chunkswarm-wasm/build-pkg.sh)"
    )]
    NotBuilt(PathBuf),
}

/// Where the package is built and from what.
#[derive(Debug, Clone)]
pub struct PkgBuild {
    /// The cargo workspace holding `chunkswarm-wasm`.
    pub workspace: PathBuf,
    /// Where the package goes.
    pub out_dir: PathBuf,
    /// The nested cargo's target folder.
    pub target_dir: PathBuf,
}

impl PkgBuild {
    /// The package of this source tree, built under
    /// `target/chunkswarm-demo/` (or `$CARGO_TARGET_DIR/chunkswarm-demo/`).
    pub fn for_this_workspace() -> Self {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| {
                if t.is_relative() {
                    workspace.join(t)
                } else {
                    t
                }
            })
            .unwrap_or_else(|| workspace.join("target"));
        let root = target.join("chunkswarm-demo");
        Self {
            workspace,
            out_dir: root.join("pkg"),
            target_dir: root.join("cargo"),
        }
    }

    /// Whether every file a package needs is there.
    pub fn is_built(&self) -> bool {
        self.out_dir.join(STAMP).is_file()
            && PKG_FILES.iter().all(|f| self.out_dir.join(f).is_file())
    }

    /// Whether the package is missing or older than one of its sources.
    pub fn is_stale(&self) -> Result<bool, PkgError> {
        if !self.is_built() {
            return Ok(true);
        }
        let stamp = modified(&self.out_dir.join(STAMP))?;
        Ok(newest_source(&self.workspace)?.is_some_and(|newest| newest > stamp))
    }

    /// Builds the package unless it is up to date; with `build` false, only
    /// checks that a package is there (stale or not).
    pub fn ensure(&self, build: bool) -> Result<(), PkgError> {
        if !build {
            return if self.is_built() {
                Ok(())
            } else {
                Err(PkgError::NotBuilt(self.out_dir.clone()))
            };
        }
        // Tests of one binary run on threads of one process and may all ask
        // for the package at once: one builds, the others then find it built.
        static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _building = BUILDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !self.is_stale()? {
            tracing::info!(dir = %self.out_dir.display(), "wasm package is up to date");
            return Ok(());
        }
        tracing::info!(
            dir = %self.out_dir.display(),
            "building the wasm package (the first build takes a few minutes)"
        );
        ensure_wasm_target()?;
        ensure_bindgen(&bindgen_version(&self.workspace.join("Cargo.lock"))?)?;
        let script = self.workspace.join("chunkswarm-wasm/build-pkg.sh");
        let mut command = Command::new("bash");
        command
            .arg(&script)
            .arg(&self.out_dir)
            .current_dir(&self.workspace)
            .env("CARGO_TARGET_DIR", &self.target_dir);
        run(&mut command, "bash is needed to run build-pkg.sh")?;
        for file in PKG_FILES {
            let path = self.out_dir.join(file);
            if !path.is_file() {
                return Err(PkgError::Missing(path));
            }
        }
        let stamp = self.out_dir.join(STAMP);
        std::fs::write(&stamp, b"built by the chunkswarm demo server\n").map_err(|source| {
            PkgError::Io {
                path: stamp,
                source,
            }
        })?;
        tracing::info!(dir = %self.out_dir.display(), "wasm package built");
        Ok(())
    }
}

/// Shorthand for [`PkgBuild::for_this_workspace`] then [`PkgBuild::ensure`];
/// returns the package folder.
pub fn ensure(build: bool) -> Result<PathBuf, PkgError> {
    let pkg = PkgBuild::for_this_workspace();
    pkg.ensure(build)?;
    Ok(pkg.out_dir)
}

/// The `wasm-bindgen` version that `Cargo.lock` pins.
pub fn bindgen_version(lock: &Path) -> Result<String, PkgError> {
    let text = std::fs::read_to_string(lock).map_err(|source| PkgError::Io {
        path: lock.to_owned(),
        source,
    })?;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == r#"name = "wasm-bindgen""# {
            let version = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'));
            if let Some(version) = version {
                return Ok(version.to_owned());
            }
        }
    }
    Err(PkgError::NoBindgenVersion(lock.to_owned()))
}

fn ensure_wasm_target() -> Result<(), PkgError> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| PkgError::Spawn {
            tool: "rustup".into(),
            source,
            hint: "install the wasm32-unknown-unknown target for your Rust toolchain",
        })?;
    let listed = String::from_utf8_lossy(&installed.stdout);
    if listed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        return Ok(());
    }
    tracing::info!("installing the wasm32-unknown-unknown target");
    run(
        Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]),
        "rustup installs Rust targets",
    )
}

fn ensure_bindgen(version: &str) -> Result<(), PkgError> {
    let found = Command::new("wasm-bindgen").arg("--version").output();
    if let Ok(output) = &found {
        let said = String::from_utf8_lossy(&output.stdout);
        if said.split_whitespace().nth(1) == Some(version) {
            return Ok(());
        }
        tracing::info!(found = %said.trim(), want = version, "wasm-bindgen-cli has the wrong version");
    }
    tracing::info!(version, "installing wasm-bindgen-cli (takes a few minutes)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(
        Command::new(cargo).args([
            OsStr::new("install"),
            OsStr::new("wasm-bindgen-cli"),
            OsStr::new("--version"),
            OsStr::new(&format!("={version}")),
        ]),
        "cargo installs wasm-bindgen-cli",
    )
}

/// Runs a command with the output going to ours; fails unless it succeeds.
fn run(command: &mut Command, hint: &'static str) -> Result<(), PkgError> {
    let line = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(OsStr::to_string_lossy)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = command
        .stdin(Stdio::null())
        .status()
        .map_err(|source| PkgError::Spawn {
            tool: command.get_program().to_string_lossy().into_owned(),
            source,
            hint,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(PkgError::Failed {
            command: line,
            status,
        })
    }
}

/// The sources of the package, relative to the workspace.
const SOURCES: &[&str] = &[
    "Cargo.lock",
    "Cargo.toml",
    "chunkswarm-core/Cargo.toml",
    "chunkswarm-core/src",
    "chunkswarm-wasm/Cargo.toml",
    "chunkswarm-wasm/build-pkg.sh",
    "chunkswarm-wasm/src",
    "chunkswarm-wasm/js",
];

/// The newest modification time among the sources, if any exist.
fn newest_source(workspace: &Path) -> Result<Option<SystemTime>, PkgError> {
    let mut newest = None;
    for source in SOURCES {
        newest_below(&workspace.join(source), 0, &mut newest)?;
    }
    Ok(newest)
}

fn newest_below(
    path: &Path,
    depth: usize,
    newest: &mut Option<SystemTime>,
) -> Result<(), PkgError> {
    let io = |source| PkgError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let time = meta.modified().map_err(io)?;
    *newest = Some(newest.map_or(time, |n: SystemTime| n.max(time)));
    if meta.is_dir() && depth < 16 {
        for entry in std::fs::read_dir(path).map_err(io)? {
            newest_below(&entry.map_err(io)?.path(), depth + 1, newest)?;
        }
    }
    Ok(())
}

fn modified(path: &Path) -> Result<SystemTime, PkgError> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|source| PkgError::Io {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bindgen_version_comes_from_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("Cargo.lock");
        std::fs::write(
            &lock,
            "[[package]]\nname = \"wasm-bindgen-futures\"\nversion = \"0.4.1\"\n\n\
             [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n",
        )
        .unwrap();
        assert_eq!(bindgen_version(&lock).unwrap(), "0.2.130");
        std::fs::write(&lock, "[[package]]\nname = \"x\"\n").unwrap();
        assert!(matches!(
            bindgen_version(&lock),
            Err(PkgError::NoBindgenVersion(_))
        ));
    }

    #[test]
    fn a_package_is_stale_until_built_and_again_after_a_source_changes() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("ws");
        std::fs::create_dir_all(workspace.join("chunkswarm-wasm/src")).unwrap();
        std::fs::write(workspace.join("chunkswarm-wasm/src/lib.rs"), "").unwrap();
        let pkg = PkgBuild {
            workspace: workspace.clone(),
            out_dir: dir.path().join("pkg"),
            target_dir: dir.path().join("target"),
        };
        assert!(!pkg.is_built());
        assert!(pkg.is_stale().unwrap());
        assert!(matches!(pkg.ensure(false), Err(PkgError::NotBuilt(_))));

        std::fs::create_dir_all(&pkg.out_dir).unwrap();
        for file in PKG_FILES {
            std::fs::write(pkg.out_dir.join(file), "").unwrap();
        }
        let stamp = pkg.out_dir.join(STAMP);
        std::fs::write(&stamp, "").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&stamp)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(pkg.is_built());
        assert!(!pkg.is_stale().unwrap());
        pkg.ensure(false).unwrap();

        let source = workspace.join("chunkswarm-wasm/src/lib.rs");
        std::fs::File::options()
            .write(true)
            .open(&source)
            .unwrap()
            .set_modified(later + std::time::Duration::from_secs(1))
            .unwrap();
        assert!(pkg.is_stale().unwrap());
    }
}
