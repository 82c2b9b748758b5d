//! A progress bar on stderr for long imports (only when stderr is a
//! terminal; the binary decides).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ingest::Progress;
use crate::sanitize::sanitize_bytes;

/// An indicatif bar per input.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A hidden bar that draws on stderr.
    pub fn new() -> Bar {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        Bar { bar }
    }
}

impl Default for Bar {
    fn default() -> Self {
        Bar::new()
    }
}

impl Progress for Bar {
    fn start(&self, name: &str, size: Option<u64>) {
        self.bar.reset();
        self.bar.set_length(size.unwrap_or(0));
        let style = if size.is_some() {
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
        } else {
            ProgressStyle::with_template("{msg} {bytes} {binary_bytes_per_sec}")
        };
        if let Ok(s) = style {
            self.bar.set_style(s.progress_chars("=> "));
        }
        self.bar.set_message(sanitize_bytes(name.as_bytes(), 40));
    }

    fn advance(&self, raw: u64) {
        self.bar.set_position(raw);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
