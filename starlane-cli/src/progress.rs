//! A small upload progress bar on standard error, shown only for large uploads and only when
//! standard error is a terminal.

use std::io::{IsTerminal, Write};

use cosmic_hyperspace::control::Progress;

use crate::output::human_bytes;

/// Uploads smaller than this show no bar.
pub const SHOW_FROM: u64 = 1024 * 1024;

/// Width of the bar in characters.
const WIDTH: u64 = 30;

/// A progress bar for one upload.
#[derive(Debug)]
pub struct UploadBar {
    label: String,
    enabled: bool,
    drawn: Option<u64>,
}

impl UploadBar {
    /// A bar labelled `label` (e.g. the file being published), drawn if `bytes` is large and
    /// standard error is a terminal.
    pub fn new(label: impl Into<String>, bytes: u64) -> UploadBar {
        UploadBar {
            label: label.into(),
            enabled: bytes >= SHOW_FROM && std::io::stderr().is_terminal(),
            drawn: None,
        }
    }

    /// Redraws the bar when the percentage changes; ends the line when the upload is done.
    pub fn update(&mut self, progress: Progress) {
        if !self.enabled {
            return;
        }
        let percent = (progress.sent * 100)
            .checked_div(progress.total)
            .unwrap_or(100);
        if self.drawn == Some(percent) {
            return;
        }
        self.drawn = Some(percent);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}", line(&self.label, progress));
        if progress.sent >= progress.total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

/// One frame of the bar: `uploading bundle.zip [#####-----]  50%  1.0 MiB / 2.0 MiB`.
fn line(label: &str, progress: Progress) -> String {
    let filled = (progress.sent * WIDTH)
        .checked_div(progress.total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let percent = (progress.sent * 100)
        .checked_div(progress.total)
        .unwrap_or(100);
    format!(
        "uploading {label} [{}{}] {percent:>3}%  {} / {}",
        "#".repeat(filled as usize),
        "-".repeat((WIDTH - filled) as usize),
        human_bytes(progress.sent),
        human_bytes(progress.total),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_progress() {
        let half = Progress {
            sent: 1024 * 1024,
            total: 2 * 1024 * 1024,
        };
        assert_eq!(
            line("bundle.zip", half),
            "uploading bundle.zip [###############---------------]  50%  1.0 MiB / 2.0 MiB"
        );
        let done = Progress {
            sent: 10,
            total: 10,
        };
        assert!(line("x", done).contains("[##############################] 100%"));
        let empty = Progress { sent: 0, total: 0 };
        assert!(line("x", empty).contains("100%"));
    }
}
