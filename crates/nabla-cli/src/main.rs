//! `nabla`: train, evaluate, predict, summarize, explain, plot and report
//! on models from the command line. Usage errors exit with 2 (clap),
//! runtime errors print one line on stderr and exit with 1, an interrupted
//! training exits with 130 after writing its checkpoint.

mod args;
mod checkpoint;
mod common;
mod explain;
mod inspect;
mod lm;
mod modelfile;
mod plots;
mod report;
mod train;

use clap::Parser;

use args::{Cli, Command};

fn main() {
    // An internal bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error (please report): {info}");
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train::run(*a),
        Command::Eval(a) => inspect::eval(a).map(|_| 0),
        Command::Predict(a) => inspect::predict(a).map(|_| 0),
        Command::Summary(a) => inspect::summary(a).map(|_| 0),
        Command::Explain(a) => explain::run(a).map(|_| 0),
        Command::Plot(a) => plots::run(a).map(|_| 0),
        Command::Report(a) => report::run(a).map(|_| 0),
        Command::Generate(a) => lm::generate(a).map(|_| 0),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
