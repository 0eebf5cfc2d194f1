# The README's commands. `make demo` renders a real video from a sample brief on a fresh
# Debian 12 machine; `make test` runs every test.
BRIEF ?= A calm 15-second teaser for a neighbourhood bakery: fresh bread at dawn, warm light, the shop opening its doors.

.PHONY: setup build demo test bench encoder-ratio fmt lint

setup:
	./scripts/setup.sh

build: setup
	cargo build --release

demo: build
	./target/release/aiprod run "$(BRIEF)" --duration 15 --aspect 9:16 --lang en,fr --out out/demo

test: setup
	cargo test --workspace

bench: setup
	cargo bench --bench pipeline --bench render

encoder-ratio: setup
	./scripts/encoder_vs_ffmpeg.sh

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets -- -D warnings
