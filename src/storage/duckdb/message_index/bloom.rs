//! A blocked Bloom filter over message keys: each key sets and tests bits
//! of one 512-bit block (one cache line), so a lookup costs one memory
//! access. Keys are uniform hashes already: their bits pick the block and
//! the bits within it, with no hashing of their own.

/// Bits set per key.
const PROBES: u32 = 7;
/// Bits per key at the filter's capacity: about 0.6% false positives there.
pub(super) const BITS_PER_KEY: usize = 12;

/// One cache line of bits.
type Block = [u64; 8];

/// Which keys may be in a set: never a false "no".
pub(super) struct BlockedBloom {
    blocks: Vec<Block>,
    capacity: usize,
}

impl BlockedBloom {
    /// An empty filter for up to `capacity` keys at [`BITS_PER_KEY`].
    pub(super) fn with_capacity(capacity: usize) -> Self {
        let blocks = (capacity.max(64) * BITS_PER_KEY).div_ceil(512);
        BlockedBloom {
            blocks: vec![[0; 8]; blocks],
            capacity,
        }
    }

    /// The keys it was sized for.
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes it holds.
    pub(super) fn bytes(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<Block>()
    }

    fn place(&self, key: u128) -> (usize, u64) {
        // The low half picks the block (multiply-shift over the block count),
        // the high half's low 63 bits the seven bits within it.
        let block = ((u128::from(key as u64) * self.blocks.len() as u128) >> 64) as usize;
        (block, (key >> 64) as u64)
    }

    /// Records `key`.
    pub(super) fn insert(&mut self, key: u128) {
        let (block, mut bits) = self.place(key);
        let block = &mut self.blocks[block];
        for _ in 0..PROBES {
            let bit = (bits & 511) as usize;
            block[bit / 64] |= 1 << (bit % 64);
            bits >>= 9;
        }
    }

    /// Whether `key` may have been recorded.
    pub(super) fn may_contain(&self, key: u128) -> bool {
        let (block, mut bits) = self.place(key);
        let block = &self.blocks[block];
        (0..PROBES).all(|_| {
            let bit = (bits & 511) as usize;
            bits >>= 9;
            block[bit / 64] & (1 << (bit % 64)) != 0
        })
    }

    /// The filter as bytes, for a file.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(16 + self.bytes());
        bytes.extend_from_slice(&(self.capacity as u64).to_le_bytes());
        bytes.extend_from_slice(&(self.blocks.len() as u64).to_le_bytes());
        for block in &self.blocks {
            for word in block {
                bytes.extend_from_slice(&word.to_le_bytes());
            }
        }
        bytes
    }

    /// A filter read back from [`Self::to_bytes`]; `None` when damaged.
    pub(super) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let word = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let capacity = usize::try_from(word(0)?).ok()?;
        let count = usize::try_from(word(8)?).ok()?;
        if bytes.len() != 16 + count * 64 {
            return None;
        }
        let blocks = (0..count)
            .map(|block| {
                let mut words = [0u64; 8];
                for (i, word_of) in words.iter_mut().enumerate() {
                    *word_of = word(16 + block * 64 + i * 8).unwrap_or(0);
                }
                words
            })
            .collect();
        Some(BlockedBloom { blocks, capacity })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seed: u64, count: usize) -> Vec<u128> {
        // SplitMix64 pairs: uniform, as message keys are.
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        (0..count)
            .map(|_| (u128::from(next()) << 64) | u128::from(next()))
            .collect()
    }

    /// A filter for `capacity` keys holding `recorded`.
    fn holding(capacity: usize, recorded: &[u128]) -> BlockedBloom {
        let mut bloom = BlockedBloom::with_capacity(capacity);
        for key in recorded {
            bloom.insert(*key);
        }
        bloom
    }

    #[test]
    fn recorded_keys_are_always_found_and_few_others_are() {
        let recorded = keys(1, 100_000);
        let bloom = holding(100_000, &recorded);
        assert!(recorded.iter().all(|key| bloom.may_contain(*key)));
        let others = keys(2, 100_000);
        let false_positives = others.iter().filter(|key| bloom.may_contain(**key)).count();
        assert!(
            false_positives < 1_500,
            "{false_positives} of 100,000 at capacity"
        );
    }

    #[test]
    fn a_filter_survives_its_bytes() {
        let recorded = keys(3, 1_000);
        let bloom = holding(1_000, &recorded);
        let read = BlockedBloom::from_bytes(&bloom.to_bytes()).unwrap();
        assert_eq!(read.capacity(), 1_000);
        assert!(recorded.iter().all(|key| read.may_contain(*key)));
        assert!(BlockedBloom::from_bytes(&bloom.to_bytes()[..100]).is_none());
    }
}
