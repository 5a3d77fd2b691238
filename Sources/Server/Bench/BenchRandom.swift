/// The pseudo-random numbers of `brain bench`: SplitMix64, small, fast and reproducible.
///
/// A run is a function of its seed: every connection draws from its own stream
/// (`seed`, connection index), so the keys, operations and values a connection sends are the
/// same whatever the protocol, the timing or the number of threads. Not for cryptography.
struct BenchRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// The stream `stream` of the generator seeded with `seed`. Distinct streams of one seed
    /// are independent for a benchmark's purposes.
    init(seed: UInt64, stream: UInt64 = 0) {
        state = seed ^ (stream &* 0xD1B5_4A32_D192_ED03)
        // One round of mixing, so that neighbouring streams do not start close together.
        state = next()
    }

    /// The next 64 random bits.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound` (`bound` > 0), by Lemire's multiply-and-shift: no division,
    /// and a bias below `bound / 2^64`, invisible at benchmark sizes.
    mutating func below(_ bound: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}
