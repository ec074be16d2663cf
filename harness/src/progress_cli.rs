//! How far `run`, `sweep` and `explore` are, on stderr, drawn by indicatif: on a terminal a bar
//! (items done of how many, time taken, time left, what runs now) kept under the lines the verb
//! prints; anywhere else (a CI log, a pipe, a test capturing stderr) no bar and no escape codes,
//! only those lines, one per finished item, so a log stays readable and greppable. Whether
//! stderr is a terminal is indicatif's own test (its stderr target hides itself otherwise).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How often the bar redraws on its own, so its clock moves while a long item runs.
const TICK: Duration = Duration::from_millis(200);

/// The progress of one verb's items; the bar is cleared when it is dropped.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// `total` items (0 while not known yet: [`Progress::set_total`]).
    pub(crate) fn new(total: usize) -> Self {
        let bar = ProgressBar::new(total as u64);
        let style = ProgressStyle::with_template(
            "[{bar:20}] {pos}/{len} {elapsed} (left {eta}) {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>-");
        bar.set_style(style);
        if !bar.is_hidden() {
            bar.enable_steady_tick(TICK);
        }
        Self { bar }
    }

    /// The number of items, once known.
    pub(crate) fn set_total(&self, total: usize) {
        self.bar.set_length(total as u64);
    }

    /// What runs now, shown at the end of the bar.
    pub(crate) fn running(&self, what: impl Into<String>) {
        self.bar.set_message(what.into());
    }

    /// One more item finished.
    pub(crate) fn advance(&self) {
        self.bar.inc(1);
    }

    /// Print `text` on stderr: above the bar on a terminal, as a plain line elsewhere.
    pub(crate) fn line(&self, text: &str) {
        self.bar.suspend(|| eprintln!("{text}"));
    }

    /// Whether a bar is drawn (stderr is a terminal).
    pub(crate) fn on_terminal(&self) -> bool {
        !self.bar.is_hidden()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
