//! Training: epochs, roll-back, early stop, resume.

pub mod rule;
