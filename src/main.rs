//! The `aiprod` binary: argument parsing and dispatch live in [`aiprod::cli`].
fn main() -> std::process::ExitCode {
    aiprod::cli::main()
}
