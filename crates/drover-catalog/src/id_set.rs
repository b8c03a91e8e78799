//! A fixed-size set of small indices (hotfix positions in the catalog), stored as bits.
//!
//! Supersedence closures hold one set per hotfix, so a bit set keeps them at
//! `hotfixes² / 8` bytes (half a megabyte at the hotfix limit) where tree sets would take
//! hundreds. This module knows nothing of hotfixes; it is a plain set of `usize`.

/// A set of indices below the capacity given at creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdSet {
    words: Vec<u64>,
}

impl IdSet {
    pub(crate) fn with_capacity(capacity: usize) -> IdSet {
        IdSet {
            words: vec![0; capacity.div_ceil(64)],
        }
    }

    pub(crate) fn insert(&mut self, index: usize) {
        self.words[index / 64] |= 1 << (index % 64);
    }

    pub(crate) fn contains(&self, index: usize) -> bool {
        self.words
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    pub(crate) fn union_with(&mut self, other: &IdSet) {
        for (word, other_word) in self.words.iter_mut().zip(&other.words) {
            *word |= other_word;
        }
    }

    pub(crate) fn subtract(&mut self, other: &IdSet) {
        for (word, other_word) in self.words.iter_mut().zip(&other.words) {
            *word &= !other_word;
        }
    }

    pub(crate) fn intersect_with(&mut self, other: &IdSet) {
        for (word, other_word) in self.words.iter_mut().zip(&other.words) {
            *word &= other_word;
        }
    }

    pub(crate) fn is_subset_of(&self, other: &IdSet) -> bool {
        self.words
            .iter()
            .zip(&other.words)
            .all(|(word, other_word)| word & !other_word == 0)
    }

    /// The members in ascending order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(word_index, word)| {
                (0..64)
                    .filter(move |bit| word & (1 << bit) != 0)
                    .map(move |bit| word_index * 64 + bit)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_set_across_word_boundaries() {
        let mut set = IdSet::with_capacity(130);
        for index in [0, 64, 129] {
            set.insert(index);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 64, 129]);
        assert!(set.contains(129) && !set.contains(63) && !set.contains(500));

        let mut other = IdSet::with_capacity(130);
        other.insert(64);
        other.insert(5);
        assert!(!other.is_subset_of(&set));
        let mut both = set.clone();
        both.intersect_with(&other);
        assert_eq!(both.iter().collect::<Vec<_>>(), vec![64]);
        set.subtract(&other);
        set.union_with(&IdSet::with_capacity(130));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 129]);
    }
}
