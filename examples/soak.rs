//! The soak (`make soak SEEDS=10000`): every fault alone and together, 5 and 25 nodes,
//! every CRDT workload, every latency distribution, one test per seed, on every core.
//! Prints seeds run, valid, lost values, false deaths and the replay command of each
//! failing seed; exits 1 if any seed failed.

use clap::Parser;

// As in examples/simulate.rs: the simulation allocates at a high rate.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use node::sim::soak::soak;

#[derive(Parser, Debug)]
#[command(about = "Run the simulation over many seeds, faults and workloads")]
struct Args {
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How many seeds.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// Seeds run at once (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
}

fn main() {
    let args = Args::parse();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = std::time::Instant::now();
    let tally = soak(args.seed..args.seed + args.seeds, jobs);
    for failure in &tally.failures {
        println!("{failure}");
    }
    println!(
        "{} | wall {:.0} s",
        tally.summary(),
        started.elapsed().as_secs_f64()
    );
    if !tally.passed() {
        std::process::exit(1);
    }
}
