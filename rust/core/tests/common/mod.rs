//! Helpers shared by the integration tests: a tiny deterministic RNG and tensor builders.

#![allow(dead_code)]

/// xorshift64*: deterministic, dependency-free random numbers for tests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.uniform()).collect()
    }
}

/// Runs `f` on a pool of three threads (more than one whatever the machine), so that a
/// `Par::Rayon` call above `MIN_PARALLEL_WORK` really splits its work.
pub fn on_three_threads<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
        .install(f)
}

/// Awkward sizes: empty, one, odd, just over a chunk.
pub const SIZES: &[usize] = &[0, 1, 7, 1023, nesy_core::par::CHUNK + 3, 70_001];
