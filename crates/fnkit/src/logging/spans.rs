//! The user's live spans, for the log subscriber: a slab of reference-counted spans whose ids
//! never find a later span in a reused slot.

use tracing_core::span::Id;
use tracing_core::Metadata;

/// The live spans: a slab whose free slots are reused. A span's id holds its slot's index (plus
/// one, so never zero) in the low 32 bits and the slot's generation in the high 32: an id kept
/// past its span's close never finds the span that reuses the slot.
#[derive(Default)]
pub(super) struct Spans {
    pub(super) slots: Vec<Slot>,
    /// The first free slot; each free slot names the next.
    free: Option<usize>,
}

pub(super) struct Slot {
    generation: u32,
    pub(super) state: SlotState,
}

pub(super) enum SlotState {
    Free { next: Option<usize> },
    Live(SpanData),
}

pub(super) struct SpanData {
    pub(super) meta: &'static Metadata<'static>,
    pub(super) parent: Option<u64>,
    /// Pre-rendered `,"key":value` JSON members.
    pub(super) fields: String,
    /// Handles to the span (`Span` clones) and children still open.
    pub(super) refs: usize,
}

impl Spans {
    /// The slot of span `id`, if the span is live: the slot holds a span, of the generation the
    /// id names (not a later one that reused the slot).
    fn slot_of(&self, id: u64) -> Option<usize> {
        let index = usize::try_from(id & u64::from(u32::MAX))
            .ok()?
            .checked_sub(1)?;
        let slot = self.slots.get(index)?;
        (slot.generation == (id >> 32) as u32 && matches!(slot.state, SlotState::Live(_)))
            .then_some(index)
    }

    pub(super) fn get(&self, id: u64) -> Option<&SpanData> {
        match &self.slots[self.slot_of(id)?].state {
            SlotState::Live(data) => Some(data),
            SlotState::Free { .. } => None,
        }
    }

    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut SpanData> {
        let index = self.slot_of(id)?;
        match &mut self.slots[index].state {
            SlotState::Live(data) => Some(data),
            SlotState::Free { .. } => None,
        }
    }

    /// Stores a new span and returns its id.
    pub(super) fn insert(&mut self, data: SpanData) -> Id {
        let reused = self.free.and_then(|index| {
            let slot = self.slots.get_mut(index)?;
            let SlotState::Free { next } = slot.state else {
                return None;
            };
            Some((index, slot, next))
        });
        let (index, generation) = match reused {
            Some((index, slot, next)) => {
                slot.state = SlotState::Live(data);
                self.free = next;
                (index, slot.generation)
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    state: SlotState::Live(data),
                });
                (self.slots.len() - 1, 0)
            }
        };
        Id::from_u64((u64::from(generation) << 32) | (index as u64 + 1))
    }

    /// Adds a reference to span `id`; false if it is not live.
    pub(super) fn retain(&mut self, id: u64) -> bool {
        self.get_mut(id).map(|data| data.refs += 1).is_some()
    }

    /// Drops a reference to span `id`; true if that closed it. A closed span drops its reference
    /// to its parent, which may close the parent in turn.
    pub(super) fn release(&mut self, id: u64) -> bool {
        let Some(mut parent) = self.release_one(id) else {
            return false;
        };
        while let Some(id) = parent {
            parent = self.release_one(id).flatten();
        }
        true
    }

    /// Drops a reference to span `id`; `Some(parent)` if that closed it, `None` if it is still
    /// open (or was not live).
    fn release_one(&mut self, id: u64) -> Option<Option<u64>> {
        let index = self.slot_of(id)?;
        let slot = &mut self.slots[index];
        if let SlotState::Live(data) = &mut slot.state {
            data.refs = data.refs.saturating_sub(1);
            if data.refs > 0 {
                return None;
            }
        }
        let closed = std::mem::replace(&mut slot.state, SlotState::Free { next: self.free });
        slot.generation = slot.generation.wrapping_add(1);
        self.free = Some(index);
        match closed {
            SlotState::Live(data) => Some(data.parent),
            SlotState::Free { .. } => None,
        }
    }

    /// Appends the fields of span `id` and of its ancestors to `out`, root first (as
    /// tracing-subscriber's `scope().from_root()`), without collecting the chain: walking up from
    /// `id`, each ancestor's fields go in before its descendants'.
    pub(super) fn push_fields(&self, id: u64, out: &mut String) {
        let at = out.len();
        let mut next = Some(id);
        while let Some(data) = next.and_then(|id| self.get(id)) {
            out.insert_str(at, &data.fields);
            next = data.parent;
        }
    }
}
