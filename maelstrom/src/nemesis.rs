//! The partition nemesis (spec 4): the four grudge shapes and the stagger schedule, plus
//! our extension faults (pause, crash).

use rand_chacha::ChaCha8Rng;

use crate::net::Grudge;

/// The partition specs Maelstrom picks from uniformly (spec 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionSpec {
    One,
    MinorityThird,
    Majority,
    MajoritiesRing,
}

impl PartitionSpec {
    pub const ALL: [PartitionSpec; 4] = [
        PartitionSpec::One,
        PartitionSpec::MinorityThird,
        PartitionSpec::Majority,
        PartitionSpec::MajoritiesRing,
    ];

    /// The keyword Maelstrom records as the nemesis invocation value (`majority`, ...).
    pub fn keyword(self) -> &'static str {
        match self {
            PartitionSpec::One => "one",
            PartitionSpec::MinorityThird => "minority-third",
            PartitionSpec::Majority => "majority",
            PartitionSpec::MajoritiesRing => "majorities-ring",
        }
    }
}

/// Builds the grudge for `spec` over `nodes`.
pub fn grudge(spec: PartitionSpec, nodes: &[String], rng: &mut ChaCha8Rng) -> Grudge {
    let _ = (spec, nodes, rng);
    todo!()
}
