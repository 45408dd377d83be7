//! The pieces of a Vision Transformer (Dosovitskiy et al. 2020) that the
//! Transformer modules lack: [`PatchEmbedding`] cuts an image into P×P
//! patches and embeds each (a convolution of kernel and stride P), puts a
//! learned class token in front and adds learned positions; [`ClassToken`]
//! keeps that token's output for the classification head.
//!
//! Shapes: images `[N, C, H, W]` → tokens `[N, 1 + (H/P)·(W/P), D]` →
//! (a batch-first `TransformerEncoder`) → `[N, D]` → a linear head.
//! Parameter names as timm's: `proj.weight`, `proj.bias`, `cls_token`,
//! `pos_embed`.

use nabla_core::{Conv2dParams, Error, Result, Tensor};

use crate::{init, Conv2d, Module, Parameters};

/// Patches of an image as tokens, with a class token and positions.
pub struct PatchEmbedding {
    pub proj: Conv2d,
    /// `[1, 1, D]`
    pub cls_token: Tensor,
    /// `[1, 1 + patches, D]`
    pub pos_embed: Tensor,
    pub patch: usize,
}

impl PatchEmbedding {
    /// For `[C, H, W]` images (H and W multiples of `patch`) and tokens of
    /// `dim` features; the class token and positions start N(0, 0.02²).
    pub fn new(image: [usize; 3], patch: usize, dim: usize) -> Result<Self> {
        let [c, h, w] = image;
        if patch == 0 || h % patch != 0 || w % patch != 0 || dim == 0 {
            return Err(Error::Arg {
                op: "PatchEmbedding",
                msg: format!("the image {h}×{w} must split into whole patches of {patch}, and dim {dim} be positive"),
            });
        }
        let tokens = 1 + (h / patch) * (w / patch);
        let params = Conv2dParams::default().stride(patch);
        Ok(PatchEmbedding {
            proj: Conv2d::with(c, dim, patch, params, true),
            cls_token: init::normal(&[1, 1, dim], 0.02).requires_grad_(true),
            pos_embed: init::normal(&[1, tokens, dim], 0.02).requires_grad_(true),
            patch,
        })
    }
}

impl Parameters for PatchEmbedding {
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = crate::prefixed("proj", self.proj.named_parameters());
        p.push(("cls_token".into(), self.cls_token.clone()));
        p.push(("pos_embed".into(), self.pos_embed.clone()));
        p
    }

    fn describe(&self) -> String {
        format!(
            "PatchEmbedding(patch={}, dim={})",
            self.patch,
            self.cls_token.shape()[2]
        )
    }
}

impl Module for PatchEmbedding {
    /// `[N, C, H, W]` → `[N, 1 + patches, D]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.proj.forward(x)?; // [N, D, H/P, W/P]
        let (n, d) = (y.shape()[0], y.shape()[1]);
        let tokens = y.flatten(2, 3)?.transpose(1, 2)?; // [N, patches, D]
        let cls = self.cls_token.expand([n, 1, d])?;
        Tensor::cat(&[cls, tokens], 1)?.add(&self.pos_embed)
    }
}

/// The class token's output: `[N, T, D]` → `[N, D]`.
pub struct ClassToken;

impl Parameters for ClassToken {
    fn describe(&self) -> String {
        "ClassToken()".into()
    }
}

impl Module for ClassToken {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() != 3 {
            return Err(Error::Shape {
                op: "ClassToken",
                msg: format!("expected tokens [N, T, D], got {:?}", x.shape()),
            });
        }
        x.narrow(1, 0, 1)?.squeeze(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_become_tokens_after_the_class_token() {
        let p = PatchEmbedding::new([1, 28, 28], 7, 8).unwrap();
        let x = Tensor::randn([2, 1, 28, 28]);
        let t = p.forward(&x).unwrap();
        assert_eq!(t.shape(), [2, 17, 8]);
        // token 0 is the class token plus position 0, whatever the image
        let want = p
            .cls_token
            .add(&p.pos_embed.narrow(1, 0, 1).unwrap())
            .unwrap()
            .to_vec();
        assert_eq!(
            t.narrow(0, 1, 1).unwrap().narrow(1, 0, 1).unwrap().to_vec(),
            want
        );
        assert_eq!(ClassToken.forward(&t).unwrap().shape(), [2, 8]);
        assert!(PatchEmbedding::new([1, 28, 28], 5, 8).is_err());
        let names: Vec<String> = p.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["proj.weight", "proj.bias", "cls_token", "pos_embed"]
        );
    }
}
