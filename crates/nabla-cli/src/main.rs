//! `nabla`: train, evaluate, predict, summarize, explain, plot and report
//! on models from the command line. Usage errors exit with 2 (clap's and
//! those found after parsing), runtime errors print one line on stderr and
//! exit with 1, an interrupted training exits with 130 after writing its
//! checkpoint.

mod args;
mod common;
mod distributed;
mod explain;
mod inspect;
mod lm;
mod picture;
mod plots;
mod prune;
mod quantize;
mod report;
mod settings;
mod train;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use args::{Cli, Command};

fn main() {
    // An internal bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error (please report): {info}");
    }));
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // the flags given on the command line (a resumed training checks them)
    let given: Vec<String> = match matches.subcommand() {
        Some(("train", m)) => m
            .ids()
            .filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine))
            .map(|id| id.to_string())
            .collect(),
        _ => Vec::new(),
    };
    let result = check_environment().and_then(|_| match cli.command {
        Command::Train(a) => train::run(*a, &given),
        Command::Eval(a) => inspect::eval(a).map(|_| 0),
        Command::Predict(a) => inspect::predict(a).map(|_| 0),
        Command::Summary(a) => inspect::summary(a).map(|_| 0),
        Command::Explain(a) => explain::run(a).map(|_| 0),
        Command::Plot(a) => plots::run(a).map(|_| 0),
        Command::Report(a) => report::run(a).map(|_| 0),
        Command::Prune(a) => prune::run(a).map(|_| 0),
        Command::Quantize(a) => quantize::run(a).map(|_| 0),
        Command::Generate(a) => lm::generate(a).map(|_| 0),
    });
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e.downcast_ref::<common::Usage>().is_some();
            std::process::exit(if usage { 2 } else { 1 });
        }
    }
}

/// Environment variables nabla reads must hold what they should.
fn check_environment() -> anyhow::Result<()> {
    if let Ok(v) = std::env::var("NABLA_NUM_THREADS") {
        let n = v.trim().parse::<usize>().map_err(|_| {
            common::usage(format!(
                "NABLA_NUM_THREADS={v:?}: expected a whole number of threads"
            ))
        })?;
        common::check_threads(n, "NABLA_NUM_THREADS")?;
    }
    nabla_core::check_isa().map_err(common::usage)?;
    Ok(())
}
