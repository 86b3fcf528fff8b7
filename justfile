# Adit's everyday commands; `just --list` shows them.

# Build, start a local server (data in ./.adit/server) and the demo tunnel; Ctrl-C stops both.
run:
    cargo xtask run

# Run every test in the workspace (PostgreSQL ones when ADIT_TEST_DATABASE_URL is set).
test *ARGS:
    cargo xtask test {{ARGS}}

# Build the dashboard's browser bundle into target/site (`--release` for the small build).
ui *ARGS:
    cargo xtask ui {{ARGS}}

# Format the code.
fmt:
    cargo fmt --all

# Lint as CI does.
lint:
    cargo clippy --workspace --all-targets -- -D warnings
