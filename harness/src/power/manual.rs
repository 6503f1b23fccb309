//! Manual power: the operator switches the board and confirms on the terminal.

use std::io::{BufRead, Write};

use super::{Action, BoxFuture, Power, PowerError};

#[derive(Debug, Default)]
pub struct ManualPower;

impl Power for ManualPower {
    fn switch(&self, action: Action) -> BoxFuture<'_, Result<String, PowerError>> {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || ask(action).map_err(PowerError::Operator))
                .await
                .map_err(|e| PowerError::Operator(format!("operator prompt failed: {e}")))?
        })
    }
}

fn ask(action: Action) -> Result<String, String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| format!("manual power needs an operator at a terminal, and there is none ({e})"))?;
    let mut w = tty.try_clone().map_err(|e| e.to_string())?;
    let what = match action {
        Action::On => "switch the board ON",
        Action::Off => "switch the board OFF",
        Action::Cycle => "switch the board OFF, wait a second, and switch it ON again",
    };
    write!(w, "\n>>> certbench: please {what}, then press Enter: ").map_err(|e| e.to_string())?;
    w.flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::BufReader::new(tty)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(format!("operator confirmed power {action}"))
}
