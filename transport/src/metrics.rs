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

/// Streams by kind: how many were opened, and how many are open now.
#[derive(Debug, Clone, Default)]
pub struct StreamGauges {
    opened: Family<KindLabels, Counter>,
    active: Family<KindLabels, Gauge>,
}

impl StreamGauges {
    /// Registers both families as `<prefix>_streams` and `<prefix>_active_streams`.
    pub fn register(registry: &mut Registry, prefix: &str) -> Self {
        let gauges = Self::default();
        registry.register(
            format!("{prefix}_streams"),
            "Streams opened, by kind",
            gauges.opened.clone(),
        );
        registry.register(
            format!("{prefix}_active_streams"),
            "Streams open now, by kind",
            gauges.active.clone(),
        );
        gauges
    }

    /// Counts a stream open until the returned guard drops.
    pub fn open(&self, kind: StreamKind) -> ActiveStream {
        let labels = KindLabels {
            kind: kind.as_str(),
        };
        self.opened.get_or_create(&labels).inc();
        let gauge = self.active.get_or_create(&labels).clone();
        gauge.inc();
        ActiveStream(gauge)
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
