//! Small inline SVG line charts (no chart library): a series of per-minute values drawn to
//! a fixed box, so nothing moves when new data arrives.

use leptos::prelude::*;

/// The drawing box, in SVG units (the SVG scales to its container's width).
const WIDTH: f64 = 300.0;
const HEIGHT: f64 = 80.0;

/// The smallest "round" number (1, 2 or 5 times a power of ten) at or above `max`, so the
/// axis label reads well; 1 for an empty or all-zero series.
pub(crate) fn nice_max(max: f64) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|candidate| *candidate >= max)
        .unwrap_or(10.0 * magnitude)
}

/// The `points` of an SVG polyline for `values` spread evenly over the box's width and
/// scaled so `top` is the box's top edge (y grows downwards in SVG).
pub(crate) fn polyline(values: &[f64], top: f64) -> String {
    let step = match values.len() {
        0 | 1 => 0.0,
        n => WIDTH / (n - 1) as f64,
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let y = HEIGHT - (v.max(0.0) / top).min(1.0) * HEIGHT;
            format!("{:.1},{:.1}", i as f64 * step, y)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `bytes` as B, kB, MB or GB (powers of 1000, as network rates are).
pub(crate) fn human_bytes(bytes: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 {
        format!("{value:.0} {}", units[unit])
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// What a chart's caption says of its whole series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Summary {
    /// The sum ("12 in range"): for counts.
    Total,
    /// The largest value ("peak 40 ms"): for latencies.
    Peak,
}

impl Summary {
    fn text(self, values: &[f64], format: fn(f64) -> String) -> String {
        match self {
            Self::Total => format!("{} in range", format(values.iter().sum())),
            Self::Peak => format!(
                "peak {}",
                format(values.iter().copied().fold(0.0, f64::max))
            ),
        }
    }
}

/// One chart: a title, a summary of the series, its scale's top and the line. `format`
/// writes a value of the series as a label.
#[component]
pub(crate) fn LineChart(
    title: &'static str,
    values: Signal<Vec<f64>>,
    format: fn(f64) -> String,
    summary: Summary,
) -> impl IntoView {
    let top = Memo::new(move |_| values.with(|v| nice_max(v.iter().copied().fold(0.0, f64::max))));
    let latest = move || values.with(|v| summary.text(v, format));
    let view_box = format!("0 0 {WIDTH} {HEIGHT}");
    view! {
        <figure class="chart">
            <figcaption>
                <span class="chart-title">{title}</span>
                <span class="chart-latest">{latest}</span>
            </figcaption>
            <div class="chart-plot">
                <span class="chart-top" aria-hidden="true">{move || format(top.get())}</span>
                <svg viewBox=view_box preserveAspectRatio="none" role="img" aria-label=title>
                    <line class="chart-axis" x1="0" y1=HEIGHT x2=WIDTH y2=HEIGHT />
                    <polyline
                        class="chart-line"
                        points=move || values.with(|v| polyline(v, top.get()))
                    />
                </svg>
            </div>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_rounds_up_to_a_readable_number() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
        assert_eq!(nice_max(1.0), 1.0);
        assert_eq!(nice_max(1.2), 2.0);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(42.0), 50.0);
        assert_eq!(nice_max(0.3), 0.5);
        assert_eq!(nice_max(1234.0), 2000.0);
    }

    #[test]
    fn points_span_the_box_and_scale_to_the_top() {
        assert_eq!(polyline(&[], 1.0), "");
        assert_eq!(polyline(&[5.0], 10.0), "0.0,40.0");
        assert_eq!(
            polyline(&[0.0, 10.0, 5.0], 10.0),
            "0.0,80.0 150.0,0.0 300.0,40.0"
        );
        // Values above the top are clipped; negatives sit on the axis.
        assert_eq!(polyline(&[20.0, -1.0], 10.0), "0.0,0.0 300.0,80.0");
    }

    #[test]
    fn captions_sum_counts_and_peak_latencies() {
        let count = |v: f64| format!("{v:.0}");
        assert_eq!(Summary::Total.text(&[1.0, 0.0, 4.0], count), "5 in range");
        assert_eq!(Summary::Peak.text(&[1.0, 9.0, 4.0], count), "peak 9");
        assert_eq!(Summary::Peak.text(&[], count), "peak 0");
    }

    #[test]
    fn bytes_read_as_units() {
        assert_eq!(human_bytes(0.0), "0 B");
        assert_eq!(human_bytes(999.0), "999 B");
        assert_eq!(human_bytes(1500.0), "1.5 kB");
        assert_eq!(human_bytes(250_000_000.0), "250 MB");
    }
}
