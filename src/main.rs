//! The `qinglian` binary: parses the command line and hands over to [`qinglian::cli`].

fn main() -> std::process::ExitCode {
    qinglian::cli::main()
}
