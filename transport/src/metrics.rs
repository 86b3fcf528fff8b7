//! Counting both ends do alike, so their metrics read the same.

use adit_core::wire::StreamKind;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

/// `2xx`, `5xx`, …: the status label both ends use.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Streams by kind: how many were opened, and how many are open now. Each kind's series
/// is made once, so opening a stream looks up no label.
#[derive(Debug, Clone, Default)]
pub struct StreamGauges {
    by_kind: [KindSeries; StreamKind::ALL.len()],
}

#[derive(Debug, Clone, Default)]
struct KindSeries {
    opened: Counter,
    active: Gauge,
}

impl StreamGauges {
    /// Registers both families as `<prefix>_streams` and `<prefix>_active_streams`.
    pub fn register(registry: &mut Registry, prefix: &str) -> Self {
        let opened = Family::<KindLabels, Counter>::default();
        let active = Family::<KindLabels, Gauge>::default();
        registry.register(
            format!("{prefix}_streams"),
            "Streams opened, by kind",
            opened.clone(),
        );
        registry.register(
            format!("{prefix}_active_streams"),
            "Streams open now, by kind",
            active.clone(),
        );
        let series = |kind: StreamKind| {
            let labels = KindLabels {
                kind: kind.as_str(),
            };
            // One statement each: a family's read guard must be gone before the next.
            let opened = opened.get_or_create(&labels).clone();
            let active = active.get_or_create(&labels).clone();
            KindSeries { opened, active }
        };
        Self {
            by_kind: StreamKind::ALL.map(series),
        }
    }

    /// Counts a stream open until the returned guard drops.
    pub fn open(&self, kind: StreamKind) -> ActiveStream {
        let series = &self.by_kind[kind.index()];
        series.opened.inc();
        series.active.inc();
        ActiveStream(series.active.clone())
    }
}

/// One open stream in the `active` gauge.
#[derive(Debug)]
pub struct ActiveStream(Gauge);

impl Drop for ActiveStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_count_while_open() {
        let mut registry = Registry::default();
        let gauges = StreamGauges::register(&mut registry, "x");
        let stream = gauges.open(StreamKind::Http);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("x_active_streams{kind=\"http\"} 1"), "{text}");
        drop(stream);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("x_active_streams{kind=\"http\"} 0"), "{text}");
        assert!(text.contains("x_streams_total{kind=\"http\"} 1"), "{text}");
        assert_eq!(status_class(503), "5xx");
    }
}
