//! nabla-vis: pictures of a model and its training. [`explain`]
//! (attribution maps), [`plot`], [`layers`] and [`curves`] (pictures of a
//! model and its training, as PNG through [`canvas`]) and [`report`] (a self-contained
//! HTML page).

pub mod canvas;
pub mod curves;
pub mod explain;
pub mod layers;
pub mod plot;
pub mod report;
