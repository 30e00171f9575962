//! The `qinglian` binary: parses the command line and hands over to [`qinglian::cli`].

/// mimalloc: ingest makes and drops several small strings per raw record,
/// where it is markedly faster than the system allocator (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    qinglian::cli::main()
}
