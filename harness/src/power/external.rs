//! Power through external commands (relay boards, PDUs, `uhubctl`, a process-based
//! simulator), in the style of labgrid's ExternalPowerDriver.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{Action, BoxFuture, Power};
use crate::config::template::{Quote, Template};

#[derive(Debug)]
pub struct ExternalPower {
    pub on: Template,
    pub off: Template,
    pub cycle: Option<Template>,
    pub timeout: Duration,
    pub off_time: Duration,
    pub vars: BTreeMap<String, String>,
    pub cwd: PathBuf,
}

/// Runs `sh -c command` in `cwd` with a deadline. On timeout the whole process group is
/// killed. Returns the combined output (bounded), or why it failed.
pub async fn run_command(
    template: &Template,
    vars: &BTreeMap<String, String>,
    cwd: &std::path::Path,
    timeout: Duration,
) -> Result<String, String> {
    let cmd = template.render(vars, Quote::Shell)?;
    // Output goes to a file, not a pipe: a command that leaves a daemon behind (a board
    // process, socat) would otherwise keep the pipe open and look like it never ended.
    let log = tempfile_for_output().map_err(|e| format!("cannot create an output file: {e}"))?;
    let out_file = log.reopen().map_err(|e| e.to_string())?;
    let err_file = log.reopen().map_err(|e| e.to_string())?;
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(&cmd)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .process_group(0)
        .kill_on_drop(true);
    let mut child = c.spawn().map_err(|e| format!("cannot start `{cmd}`: {e}"))?;
    let pid = child.id();
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(format!("`{cmd}`: {e}")),
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: kill(2) on the process group we created; harmless if it is gone.
                unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            }
            return Err(format!("`{cmd}` did not finish within {timeout:?}; killed"));
        }
    };
    let mut text = String::from_utf8_lossy(&log.read_head(8192)).into_owned();
    if text.len() >= 8192 {
        text.push_str("\n[output truncated]");
    }
    if status.success() {
        Ok(text)
    } else {
        Err(format!("`{cmd}` exited with {status}: {}", text.trim()))
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

impl ExternalPower {
    async fn run(&self, t: &Template) -> Result<String, String> {
        run_command(t, &self.vars, &self.cwd, self.timeout).await
    }
}

impl Power for ExternalPower {
    fn switch(&self, action: Action) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            match action {
                Action::On => self.run(&self.on).await,
                Action::Off => self.run(&self.off).await,
                Action::Cycle => match &self.cycle {
                    Some(c) => self.run(c).await,
                    None => {
                        let mut out = self.run(&self.off).await?;
                        tokio::time::sleep(self.off_time).await;
                        out.push_str(&self.run(&self.on).await?);
                        Ok(out)
                    }
                },
            }
        })
    }
}
