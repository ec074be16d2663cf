//! In-process nodes' logs, one file per node: `<home>/node.log`, the same place a `dlp-node`
//! process or container writes its own, so every driver's run directory (and its report) holds
//! each node's log.
//!
//! An in-process node logs through this process's tracing subscriber, inside its `node{name}`
//! span. The in-process driver starts each node inside a span of its own naming the node's log
//! file ([`node_span`]); the node's span and every task it spawns descend from it, so
//! [`NodeLogFiles`], a subscriber layer, writes each event to the file of the nearest such
//! span. Runs in parallel in one process (the explorer, the sweep) keep their nodes apart,
//! because the file is the span's, not the name's. A process that installs no layer (a
//! library user) simply gets no file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The span's target and name.
const TARGET: &str = "dlp_harness::node_log";

/// The span to start an in-process node in: its events go to `log` (appended).
pub fn node_span(log: &Path) -> tracing::Span {
    // ERROR level: enabled under any filter that is not `off`, so the file is always known.
    tracing::error_span!(target: "dlp_harness::node_log", "node_log", file = %log.display())
}

/// The layer that writes in-process nodes' logs to their files (see the module docs).
#[derive(Debug, Default)]
pub struct NodeLogFiles;

struct LogFile(Arc<Mutex<std::fs::File>>);

/// The layer, filtered by `DLP_HARNESS_LOG` (default `info`), ready to add to a registry.
pub fn node_log_layer<S>() -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let filter = tracing_subscriber::EnvFilter::try_from_env("DLP_HARNESS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let filter = match format!("{TARGET}=error").parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    Box::new(NodeLogFiles.with_filter(filter))
}

struct FileField(Option<String>);

impl Visit for FileField {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "file" {
            self.0 = Some(format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "file" {
            self.0 = Some(value.to_string());
        }
    }
}

/// `message key=value ...` of an event.
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S> Layer<S> for NodeLogFiles
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().target() != TARGET {
            return;
        }
        let mut field = FileField(None);
        attrs.record(&mut field);
        let (Some(path), Some(span)) = (field.0, ctx.span(id)) else {
            return;
        };
        if let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            span.extensions_mut()
                .insert(LogFile(Arc::new(Mutex::new(file))));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let mut file = None;
        let mut spans = Vec::new();
        for span in scope {
            if let Some(f) = span.extensions().get::<LogFile>() {
                file = Some(f.0.clone());
                break;
            }
            spans.push(span.name());
        }
        let Some(file) = file else { return };
        let meta = event.metadata();
        let mut line = Line(format!(
            "{} {:>5} {}{}:",
            clock(dlp_node_api::unix_ms()),
            meta.level(),
            spans
                .iter()
                .rev()
                .map(|s| format!("{s}: "))
                .collect::<String>(),
            meta.target()
        ));
        event.record(&mut line);
        line.0.push('\n');
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = f.write_all(line.0.as_bytes());
    }
}

/// `HH:MM:SS.mmm` (UTC) of a Unix time in milliseconds.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn events_inside_a_node_span_go_to_its_file_and_others_nowhere() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let subscriber = tracing_subscriber::registry().with(node_log_layer());
        tracing::subscriber::with_default(subscriber, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            rt.block_on(
                async {
                    // A task the node spawns inherits the span.
                    let task = tokio::spawn(
                        async { tracing::info!(peer = 7, "from a task") }.in_current_span(),
                    );
                    tracing::info_span!("node", name = "alice").in_scope(|| {
                        tracing::warn!("alice speaks");
                    });
                    let _ = task.await;
                }
                .instrument(node_span(&a)),
            );
            node_span(&b).in_scope(|| tracing::debug!("below the default filter"));
            tracing::info!("outside every node");
        });
        let text = std::fs::read_to_string(&a).expect("a.log");
        assert!(text.contains(" WARN node: "), "{text}");
        assert!(text.contains("alice speaks"), "{text}");
        assert!(text.contains("from a task peer=7"), "{text}");
        assert!(!text.contains("outside"), "{text}");
        assert_eq!(std::fs::read_to_string(&b).unwrap_or_default(), "");
    }
}
