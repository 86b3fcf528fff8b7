-- Per-tunnel traffic in one-minute buckets, kept seven days, for the dashboard's charts.
-- `minute` is the bucket's start in milliseconds since the epoch; latencies are in
-- microseconds, taken from coarse buckets (an upper bound, not an exact percentile).
CREATE TABLE traffic_minutes (
    tunnel_id TEXT NOT NULL REFERENCES tunnels(id) ON DELETE CASCADE,
    minute BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    p50_us BIGINT NOT NULL,
    p99_us BIGINT NOT NULL,
    PRIMARY KEY (tunnel_id, minute)
);
CREATE INDEX traffic_minutes_minute ON traffic_minutes (minute);
