//! The one way certbench runs a command (setup, power, factory reset, restore): `sh -c` in a
//! folder, with a deadline, output to an unlinked temporary file (a command that leaves a
//! daemon behind cannot hold a pipe open), the whole process group killed on timeout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::template::{Quote, Template};

/// Why a command did not run to a successful end. The texts are what users see in reasons.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A `{{name}}` in the command could not be filled in.
    #[error("{0}")]
    Template(String),
    #[error("cannot create an output file: {0}")]
    OutputFile(#[source] std::io::Error),
    #[error("{0}")]
    Io(#[source] std::io::Error),
    #[error("cannot start `{cmd}`: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("`{cmd}`: {source}")]
    Wait { cmd: String, source: std::io::Error },
    #[error("`{cmd}` did not finish within {timeout:?}; killed")]
    Timeout { cmd: String, timeout: Duration },
    #[error("`{cmd}` exited with {status}: {output}")]
    Exit {
        cmd: String,
        status: std::process::ExitStatus,
        output: String,
    },
}

/// Runs `sh -c command` in `cwd` with a deadline. On timeout the whole process group is
/// killed. Returns the combined output (bounded), or why it failed.
pub async fn run(
    template: &Template,
    vars: &BTreeMap<String, String>,
    cwd: &Path,
    timeout: Duration,
) -> Result<String, ProcessError> {
    let cmd = template.render(vars, Quote::Shell).map_err(ProcessError::Template)?;
    // Output goes to a file, not a pipe: a command that leaves a daemon behind (a board
    // process, socat) would otherwise keep the pipe open and look like it never ended.
    let log = tempfile_for_output().map_err(ProcessError::OutputFile)?;
    let out_file = log.reopen().map_err(ProcessError::Io)?;
    let err_file = log.reopen().map_err(ProcessError::Io)?;
    let mut c = tokio::process::Command::new("sh");
    // Under `cargo run`, certbench inherits what cargo says about certbench's own package
    // (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, OUT_DIR, ...). A profile's command that runs cargo
    // itself (a firmware build in `setup`) would pass them on, and build scripts that watch
    // them (ring's does) rebuild at every switch between `cargo run` and a plain shell.
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str()
            && (k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_MANIFEST_")
                || matches!(
                    k,
                    "CARGO_BIN_NAME" | "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "OUT_DIR" | "CERTBENCH_COMMIT"
                ))
        {
            c.env_remove(k);
        }
    }
    c.arg("-c")
        .arg(&cmd)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .process_group(0)
        .kill_on_drop(true);
    let mut child = c.spawn().map_err(|source| ProcessError::Spawn {
        cmd: cmd.clone(),
        source,
    })?;
    let pid = child.id();
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(source)) => return Err(ProcessError::Wait { cmd, source }),
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: kill(2) on the process group we created; harmless if it is gone.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            return Err(ProcessError::Timeout { cmd, timeout });
        }
    };
    let mut text = String::from_utf8_lossy(&log.read_head(8192)).into_owned();
    if text.len() >= 8192 {
        text.push_str("\n[output truncated]");
    }
    if status.success() {
        Ok(text)
    } else {
        Err(ProcessError::Exit {
            cmd,
            status,
            output: text.trim().to_string(),
        })
    }
}

/// An unlinked temporary file that collects a command's output.
struct OutputFile {
    file: std::fs::File,
    path: PathBuf,
}

impl OutputFile {
    fn reopen(&self) -> std::io::Result<std::fs::File> {
        self.file.try_clone()
    }
    fn read_head(&self, max: usize) -> Vec<u8> {
        use std::io::Read;
        let mut buf = Vec::new();
        if let Ok(f) = std::fs::File::open(&self.path) {
            let _ = f.take(max as u64).read_to_end(&mut buf);
        }
        buf
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile_for_output() -> std::io::Result<OutputFile> {
    let path = std::env::temp_dir().join(format!(
        "certbench-cmd-{}-{:016x}.log",
        std::process::id(),
        rand::random::<u64>()
    ));
    let file = std::fs::OpenOptions::new().create_new(true).append(true).open(&path)?;
    Ok(OutputFile { file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cargo test` runs this with certbench's CARGO_PKG_* and CARGO_MANIFEST_DIR set, as
    /// `cargo run` runs certbench: a profile's command must not see them (a cargo build in
    /// it would rebuild what watches them), while the user's own settings stay.
    #[tokio::test]
    async fn a_command_does_not_inherit_what_cargo_says_about_certbench() {
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some(), "run under cargo");
        let t =
            Template::parse("echo ${CARGO_PKG_NAME-unset} ${CARGO_MANIFEST_DIR-unset} ${OUT_DIR-unset} ${HOME:+home}")
                .expect("template");
        let out = run(&t, &BTreeMap::new(), Path::new("."), Duration::from_secs(10))
            .await
            .expect("run");
        assert_eq!(out.trim(), "unset unset unset home");
    }
}
