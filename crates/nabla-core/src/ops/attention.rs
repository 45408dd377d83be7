//! Scaled dot-product attention, PyTorch's
//! `F.scaled_dot_product_attention`:
//!
//! `out = softmax(scale·Q·Kᵀ + M)·V`, with queries q `[…, L, E]`, keys k
//! `[…, S, E]`, values v `[…, S, Ev]` and out `[…, L, Ev]`; `scale`
//! defaults to `1/√E`. The mask M is a keep mask (nonzero: the query may
//! see the key; PyTorch's boolean mask, `true` = attend), an additive mask
//! (added to the scores; −∞ hides a key), or causal (query i sees keys
//! j ≤ i, PyTorch's top-left alignment); a mask broadcasts to `[…, L, S]`.
//! A row that may see no key gives 0 (PyTorch's safe softmax). With
//! grouped-query attention (`gqa`), dim −3 holds the heads and `Hq / Hk`
//! query heads share each key/value head. `dropout_p` drops attention
//! weights (pass it only while training, as in PyTorch).
//!
//! Backward: with `P = softmax(S)` and `D_i = Σ_e dO_ie·O_ie`,
//! `dV = Pᵀ·dO`, `dS = P ⊙ (dO·Vᵀ − D)`, `dQ = scale·dS·K`,
//! `dK = scale·dSᵀ·Q`. The mask takes no gradient.
//!
//! On the CPU one fused kernel (`backend/cpu/attention.rs`,
//! FlashAttention-2's scheme) computes both passes block by block and keeps
//! no `L×S` matrix; with dropout, or on a backend without the kernel, the
//! op is composed of matmul and softmax.

use crate::backend::{AttentionShape, MaskKind, View};
use crate::{Error, Result, Tensor};

/// An attention mask, broadcast to `[…, L, S]`.
#[derive(Clone, Debug)]
pub enum AttentionMask {
    /// Nonzero where the query may see the key (PyTorch's boolean mask).
    Keep(Tensor),
    /// Added to the scores (PyTorch's float mask).
    Add(Tensor),
}

/// The options of [`Tensor::scaled_dot_product_attention`] (PyTorch's
/// keyword arguments): `AttentionParams::default().causal()`.
#[derive(Clone, Debug, Default)]
pub struct AttentionParams {
    pub mask: Option<AttentionMask>,
    pub causal: bool,
    pub scale: Option<f32>,
    pub dropout_p: f32,
    pub gqa: bool,
}

impl AttentionParams {
    /// Query i sees keys j ≤ i.
    pub fn causal(mut self) -> Self {
        self.causal = true;
        self
    }
    /// A keep mask: nonzero where the query may see the key.
    pub fn keep_mask(mut self, mask: &Tensor) -> Self {
        self.mask = Some(AttentionMask::Keep(mask.clone()));
        self
    }
    /// An additive mask.
    pub fn add_mask(mut self, mask: &Tensor) -> Self {
        self.mask = Some(AttentionMask::Add(mask.clone()));
        self
    }
    /// The scores' scale instead of `1/√E`.
    pub fn scale(mut self, scale: f32) -> Self {
        self.scale = Some(scale);
        self
    }
    /// Drops attention weights with probability `p`.
    pub fn dropout(mut self, p: f32) -> Self {
        self.dropout_p = p;
        self
    }
    /// Grouped-query attention: fewer key/value heads than query heads.
    pub fn gqa(mut self) -> Self {
        self.gqa = true;
        self
    }
}

const OP: &str = "scaled_dot_product_attention";

fn shape_err(msg: String) -> Error {
    Error::Shape { op: OP, msg }
}

/// The shapes checked: the kernel's view of them, and the leading dims of
/// q (the mask broadcasts to them and `[L, S]`).
fn check(q: &Tensor, k: &Tensor, v: &Tensor, p: &AttentionParams) -> Result<AttentionShape> {
    for t in [k, v] {
        super::same_device(OP, q, t)?;
    }
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    let r = qs.len();
    if r < 2 || ks.len() != r || vs.len() != r {
        return Err(shape_err(format!(
            "expected query […, L, E], key […, S, E] and value […, S, Ev] of one rank ≥ 2, got {qs:?}, {ks:?}, {vs:?}"
        )));
    }
    let (l, e, s, ev) = (qs[r - 2], qs[r - 1], ks[r - 2], vs[r - 1]);
    if ks[r - 1] != e || vs[r - 2] != s {
        return Err(shape_err(format!(
            "query {qs:?}, key {ks:?} and value {vs:?}: the key needs the query's last dim ({e}) and the value the key's steps ({})",
            ks[r - 2]
        )));
    }
    let heads = |x: &[usize]| if r >= 3 { x[r - 3] } else { 1 };
    let (hq, hk) = (heads(qs), heads(ks));
    let batch_dims = r.saturating_sub(3);
    if ks[..batch_dims] != qs[..batch_dims]
        || vs[..batch_dims] != qs[..batch_dims]
        || heads(vs) != hk
    {
        return Err(shape_err(format!(
            "query {qs:?}, key {ks:?} and value {vs:?} must agree in every dim but the last two (and the heads, dim −3, under grouped-query attention)"
        )));
    }
    if hq != hk && !(p.gqa && hk > 0 && hq % hk == 0) {
        return Err(shape_err(format!(
            "query {qs:?} has {hq} heads (dim −3) and key {ks:?} {hk}: they must be equal, or a multiple with grouped-query attention (gqa)"
        )));
    }
    if p.causal && p.mask.is_some() {
        return Err(Error::Arg {
            op: OP,
            msg: "a causal mask and an explicit mask cannot be given together".into(),
        });
    }
    if !(0.0..1.0).contains(&p.dropout_p) {
        return Err(Error::Arg {
            op: OP,
            msg: format!("dropout_p must be in [0, 1), got {}", p.dropout_p),
        });
    }
    Ok(AttentionShape {
        batch: qs[..batch_dims].iter().product(),
        heads: hq,
        kv_heads: hk,
        l,
        s,
        e,
        ev,
        scale: p.scale.unwrap_or(1.0 / (e as f32).sqrt()),
        causal: p.causal,
        precision: crate::autocast::product_precision(),
    })
}

/// The composed path: the scores as a tensor, softmax, dropout, product.
fn composed(
    (q, k, v): (&Tensor, &Tensor, &Tensor),
    a: &AttentionShape,
    mask: Option<(Tensor, MaskKind)>,
    dropout_p: f32,
) -> Result<Tensor> {
    let r = q.rank();
    let (k, v) = match a.heads == a.kv_heads {
        true => (k.clone(), v.clone()),
        false => {
            // each key/value head repeated for the query heads that share it
            let group = a.heads / a.kv_heads;
            let idx: Vec<f32> = (0..a.heads).map(|h| (h / group) as f32).collect();
            let idx = Tensor::from_vec_on(idx, [a.heads], q.device())?;
            (k.index_select(-3, &idx)?, v.index_select(-3, &idx)?)
        }
    };
    let mut s = q.matmul(&k.transpose(-2, -1)?)?.mul_scalar(a.scale)?;
    let mut hidden = None;
    if a.causal {
        let future: Vec<f32> = (0..a.l * a.s)
            .map(|x| ((x % a.s) > (x / a.s)) as u8 as f32)
            .collect();
        hidden = Some(Tensor::from_vec_on(future, [a.l, a.s], q.device())?);
    }
    match mask {
        Some((m, MaskKind::Keep)) => hidden = Some(m.eq(&Tensor::scalar(0.0))?),
        Some((m, MaskKind::Add)) => s = s.add(&m)?,
        None => {}
    }
    if let Some(hidden) = hidden {
        s = s.masked_fill(&hidden, f32::NEG_INFINITY)?;
    }
    // a row that sees no key gives 0; −∞ becomes the lowest finite score
    // so that such a row's softmax stays finite before it is zeroed
    let sees = s.max(&[-1], true)?.gt(&Tensor::scalar(f32::NEG_INFINITY))?;
    let s = s.maximum(&Tensor::scalar(f32::MIN))?;
    let mut w = s.softmax(-1)?.mul(&sees)?;
    if dropout_p > 0.0 {
        w = w.dropout(dropout_p, true)?;
    }
    let out = w.matmul(&v)?;
    debug_assert_eq!(out.rank(), r);
    Ok(out)
}

/// Runs `f` on the views of `ts` and of the mask (the mask's view last,
/// with its kind).
fn with_views<R>(
    op: &'static str,
    ts: &[&Tensor],
    mask: &Option<(Tensor, MaskKind)>,
    f: impl FnOnce(&[View], Option<(View, MaskKind)>) -> R,
) -> Result<R> {
    let mut all = ts.to_vec();
    all.extend(mask.as_ref().map(|(m, _)| m));
    super::with_views(op, &all, |v| {
        let mask = mask.as_ref().map(|(_, kind)| (v[ts.len()], *kind));
        f(&v[..ts.len()], mask)
    })
}

impl Tensor {
    /// Attention of these queries over `key` and `value`; see the module
    /// docs. `q.scaled_dot_product_attention(&k, &v, &AttentionParams::default().causal())`.
    pub fn scaled_dot_product_attention(
        &self,
        key: &Tensor,
        value: &Tensor,
        p: &AttentionParams,
    ) -> Result<Tensor> {
        let a = check(self, key, value, p)?;
        let r = self.rank();
        let mut mask_shape = self.shape()[..r - 2].to_vec();
        mask_shape.extend([a.l, a.s]);
        let mask = match &p.mask {
            None => None,
            Some(AttentionMask::Keep(m)) => Some((m, MaskKind::Keep)),
            Some(AttentionMask::Add(m)) => Some((m, MaskKind::Add)),
        };
        let mask = match mask {
            Some((m, kind)) => {
                super::same_device(OP, self, m)?;
                let m = m.detach().broadcast_to(mask_shape.clone()).map_err(|_| {
                    shape_err(format!(
                        "the mask {:?} does not broadcast to {mask_shape:?} (the query's dims but the last, then S)",
                        m.shape()
                    ))
                })?;
                Some((m, kind))
            }
            None => None,
        };
        let qkv = (self, key, value);
        if p.dropout_p > 0.0 {
            return composed(qkv, &a, mask, p.dropout_p);
        }
        let be = self.backend();
        let fused = with_views("attention", &[self, key, value], &mask, |v, m| {
            be.attention(&a, [v[0], v[1], v[2]], m)
        })?;
        let Some((out, saved)) = fused else {
            return composed(qkv, &a, mask, 0.0);
        };
        let mut out_shape = self.shape()[..r - 1].to_vec();
        out_shape.push(a.ev);
        let y = Tensor::from_storage(out, &out_shape);
        Ok(y.attach(
            "ScaledDotProductAttentionBackward",
            &[self, key, value],
            move |dy, inputs| {
                let at = [dy, &inputs[0], &inputs[1], &inputs[2]];
                let grads = with_views("attention", &at, &mask, |v, m| {
                    be.attention_backward(&a, &saved, [v[1], v[2], v[3]], m, v[0])
                })?;
                let grads = grads.ok_or_else(|| Error::Arg {
                    op: OP,
                    msg: format!("the {} backend has no backward kernel for it", be.device()),
                })?;
                Ok(grads
                    .into_iter()
                    .zip(inputs)
                    .map(|(g, t)| {
                        t.requires_grad()
                            .then(|| Tensor::from_storage(g, t.shape()))
                    })
                    .collect())
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{gradcheck, rand_input};

    /// Every option of the fused op against finite differences, including a
    /// row that sees no key, grouped heads and a strided query.
    #[test]
    fn gradcheck_every_option() {
        let q = rand_input(&[2, 4, 5, 3], 1);
        let k = rand_input(&[2, 4, 7, 3], 2);
        let v = rand_input(&[2, 4, 7, 2], 3);
        // query row 1 sees nothing
        let keep: Vec<f32> = (0..35)
            .map(|x| (x / 7 != 1 && (x * 7) % 3 != 0) as u8 as f32)
            .collect();
        let keep = Tensor::from_vec(keep, [5, 7]).unwrap();
        let add = rand_input(&[4, 1, 7], 4);
        let cases = [
            AttentionParams::default(),
            AttentionParams::default().causal(),
            AttentionParams::default().keep_mask(&keep),
            AttentionParams::default().add_mask(&add).scale(0.7),
        ];
        for p in &cases {
            let f = |x: &[Tensor]| x[0].scaled_dot_product_attention(&x[1], &x[2], p);
            gradcheck(f, &[q.clone(), k.clone(), v.clone()], Default::default())
                .unwrap_or_else(|e| panic!("{p:?}: {e}"));
        }
        // grouped heads: 4 query heads on 2 key/value heads; a strided query
        let (k2, v2) = (rand_input(&[2, 2, 7, 3], 5), rand_input(&[2, 2, 7, 2], 6));
        let p = AttentionParams::default().gqa().causal();
        let f = |x: &[Tensor]| {
            let q = x[0].transpose(1, 2)?;
            q.scaled_dot_product_attention(&x[1], &x[2], &p)
        };
        let qt = rand_input(&[2, 5, 4, 3], 7);
        gradcheck(f, &[qt, k2, v2], Default::default()).unwrap();
    }

    fn close(what: &str, a: &Tensor, b: &Tensor) {
        assert_eq!(a.shape(), b.shape(), "{what}");
        for (x, y) in a.to_vec().iter().zip(b.to_vec()) {
            assert!(
                (x - y).abs() <= 2e-5 * (1.0 + y.abs()),
                "{what}: {x} vs {y}"
            );
        }
    }

    /// Over several blocks of rows and keys (L = 70, S = 130) the fused
    /// kernel gives the composed path's values and gradients.
    #[test]
    fn the_fused_kernel_equals_the_composed_ops_across_blocks() {
        let leaf = |s: &[usize], seed| rand_input(s, seed).requires_grad_(true);
        let keep: Vec<f32> = (0..70 * 130).map(|x| (x % 11 != 3) as u8 as f32).collect();
        let keep = Tensor::from_vec(keep, [70, 130]).unwrap();
        let add = rand_input(&[1, 70, 130], 9).mul_scalar(3.0).unwrap();
        let cases = [
            (AttentionParams::default(), 130, 2),
            (AttentionParams::default().causal(), 130, 2),
            (AttentionParams::default().causal(), 70, 1),
            (AttentionParams::default().keep_mask(&keep), 130, 2),
            (AttentionParams::default().add_mask(&add), 130, 2),
        ];
        for (p, s, hk) in cases {
            let p = p.gqa();
            let (q, k, v) = (
                leaf(&[2, 2, 70, 16], 10),
                leaf(&[2, hk, s, 16], 11),
                leaf(&[2, hk, s, 8], 12),
            );
            let a = check(&q, &k, &v, &p).unwrap();
            let c = rand_input(&[2, 2, 70, 8], 13);
            let run = |fused: bool| {
                let y = match fused {
                    true => q.scaled_dot_product_attention(&k, &v, &p).unwrap(),
                    false => {
                        let mask = p.mask.as_ref().map(|m| match m {
                            AttentionMask::Keep(m) => (m.clone(), MaskKind::Keep),
                            AttentionMask::Add(m) => (m.clone(), MaskKind::Add),
                        });
                        composed((&q, &k, &v), &a, mask, 0.0).unwrap()
                    }
                };
                [&q, &k, &v].iter().for_each(|t| t.zero_grad());
                y.mul(&c).unwrap().sum_all().unwrap().backward().unwrap();
                let g: Vec<Tensor> = [&q, &k, &v].iter().map(|t| t.grad().unwrap()).collect();
                (y, g)
            };
            let ((y1, g1), (y2, g2)) = (run(true), run(false));
            close(&format!("{p:?} out"), &y1, &y2);
            for (a, b) in g1.iter().zip(&g2) {
                close(&format!("{p:?} grad"), a, b);
            }
        }
    }

    /// A row whose every key is hidden gives 0 and passes no gradient, on
    /// both paths; dropout runs through the composed path.
    #[test]
    fn rows_that_see_nothing_give_zero_and_dropout_runs() {
        let q = rand_input(&[3, 4], 20).requires_grad_(true);
        let (k, v) = (rand_input(&[5, 4], 21), rand_input(&[5, 2], 22));
        let mut keep = vec![1f32; 15];
        keep[5..10].fill(0.0);
        let keep = Tensor::from_vec(keep, [3, 5]).unwrap();
        let p = AttentionParams::default().keep_mask(&keep);
        let y = q.scaled_dot_product_attention(&k, &v, &p).unwrap();
        assert_eq!(y.narrow(0, 1, 1).unwrap().to_vec(), vec![0.0; 2]);
        y.sum_all().unwrap().backward().unwrap();
        let g = q.grad().unwrap().to_vec();
        assert_eq!(g[4..8], [0.0; 4]);
        assert!(g.iter().all(|x| x.is_finite()));
        let d = q
            .scaled_dot_product_attention(&k, &v, &p.clone().dropout(0.5))
            .unwrap();
        assert_eq!(d.shape(), [3, 2]);
        assert!(d.to_vec().iter().all(|x| x.is_finite()));
    }

    /// Wrong shapes, heads, options: one error naming the op and the shapes.
    #[test]
    fn bad_inputs_are_errors_that_say_what() {
        let z = |s: &[usize]| Tensor::zeros(s.to_vec());
        let sdpa = |q: &[usize], k: &[usize], v: &[usize], p: AttentionParams| {
            z(q).scaled_dot_product_attention(&z(k), &z(v), &p)
                .unwrap_err()
                .to_string()
        };
        let d = AttentionParams::default;
        assert!(sdpa(&[4], &[4], &[4], d()).contains("rank ≥ 2"));
        assert!(sdpa(&[2, 3, 4], &[2, 5, 3], &[2, 5, 4], d()).contains("last dim (4)"));
        let batch = sdpa(&[2, 1, 3, 4], &[3, 1, 5, 4], &[3, 1, 5, 4], d());
        assert!(batch.contains("must agree"), "{batch}");
        let heads = sdpa(&[1, 4, 3, 4], &[1, 3, 5, 4], &[1, 3, 5, 4], d().gqa());
        assert!(
            heads.contains("4 heads") && heads.contains("multiple"),
            "{heads}"
        );
        let m = z(&[3, 5]);
        let both = sdpa(&[3, 4], &[5, 4], &[5, 4], d().causal().keep_mask(&m));
        assert!(both.contains("causal"), "{both}");
        assert!(sdpa(&[3, 4], &[5, 4], &[5, 4], d().dropout(1.0)).contains("dropout_p"));
        let bad_mask = sdpa(&[3, 4], &[5, 4], &[5, 4], d().add_mask(&z(&[4, 5])));
        assert!(bad_mask.contains("does not broadcast"), "{bad_mask}");
    }
}
