//! Numeric CSV tables: feature columns and one target column, for MLPs
//! and regression. The header is optional: a first line with any cell that
//! is not a number is taken as column names. Blank lines are skipped.

use std::path::Path;

use nabla_core::Generator;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

/// Which column holds the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetColumn {
    Last,
    Index(usize),
    Name(String),
}

#[derive(Clone, Debug)]
pub struct CsvDataset {
    /// `rows × features`, row-major
    pub features: Vec<f32>,
    pub targets: Vec<f32>,
    pub feature_names: Vec<String>,
    pub num_features: usize,
}

impl CsvDataset {
    pub fn load(path: impl AsRef<Path>, target: TargetColumn) -> Result<CsvDataset> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        CsvDataset::parse(&text, target).map_err(|msg| DataError::invalid(path, msg))
    }

    /// Parses CSV text; the error names the line and column.
    pub fn parse(text: &str, target: TargetColumn) -> std::result::Result<CsvDataset, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .peekable();
        let Some(&(_, first)) = lines.peek() else {
            return Err("empty CSV: no header and no data rows".into());
        };
        let cells = |l: &str| -> Vec<String> {
            l.split(',')
                .map(|c| c.trim().trim_matches('"').to_string())
                .collect()
        };
        let first_cells = cells(first);
        let has_header = first_cells.iter().any(|c| c.parse::<f32>().is_err());
        let width = first_cells.len();
        let names: Vec<String> = if has_header {
            lines.next();
            first_cells
        } else {
            (0..width).map(|i| format!("column {i}")).collect()
        };
        let t = match &target {
            TargetColumn::Last => width - 1,
            TargetColumn::Index(i) if *i < width => *i,
            TargetColumn::Index(i) => {
                return Err(format!(
                    "target column {i} does not exist ({width} columns)"
                ))
            }
            TargetColumn::Name(n) => {
                if !has_header {
                    return Err(format!(
                        "target column {n:?} named, but the file has no header"
                    ));
                }
                names
                    .iter()
                    .position(|c| c == n)
                    .ok_or_else(|| format!("no column named {n:?} (columns: {names:?})"))?
            }
        };
        if width < 2 {
            return Err(format!(
                "need at least one feature and a target, found {width} column"
            ));
        }
        let (mut features, mut targets) = (Vec::new(), Vec::new());
        for (lineno, line) in lines {
            let row = cells(line);
            if row.len() != width {
                return Err(format!(
                    "line {}: {} columns, expected {width}",
                    lineno + 1,
                    row.len()
                ));
            }
            for (c, cell) in row.iter().enumerate() {
                let v: f32 = cell.parse().map_err(|_| {
                    format!(
                        "line {}, column {} ({}): {cell:?} is not a number",
                        lineno + 1,
                        c + 1,
                        names[c]
                    )
                })?;
                if c == t {
                    targets.push(v);
                } else {
                    features.push(v);
                }
            }
        }
        if targets.is_empty() {
            return Err("no data rows".into());
        }
        let feature_names = names
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != t)
            .map(|(_, n)| n.clone())
            .collect();
        Ok(CsvDataset {
            features,
            targets,
            feature_names,
            num_features: width - 1,
        })
    }

    /// Number of classes when every target is a non-negative integer.
    pub fn num_classes(&self) -> Option<usize> {
        let integral = self.targets.iter().all(|&v| v >= 0.0 && v.fract() == 0.0);
        integral.then(|| self.targets.iter().fold(0f32, |m, &v| m.max(v)) as usize + 1)
    }
}

impl Dataset for CsvDataset {
    fn len(&self) -> usize {
        self.targets.len()
    }

    fn input_shape(&self) -> Vec<usize> {
        vec![self.num_features]
    }

    fn get(
        &self,
        index: usize,
        input: &mut [f32],
        target: &mut [f32],
        _rng: &mut Generator,
    ) -> Result<()> {
        let f = self.num_features;
        input.copy_from_slice(&self.features[index * f..(index + 1) * f]);
        target[0] = self.targets[index];
        Ok(())
    }

    fn classes(&self) -> Option<usize> {
        self.num_classes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_header() {
        let d = CsvDataset::parse("a,b,label\n1,2,0\n3.5,-4,1\n\n", TargetColumn::Last).unwrap();
        assert_eq!((d.len(), d.num_features), (2, 2));
        assert_eq!(d.features, vec![1., 2., 3.5, -4.]);
        assert_eq!(d.num_classes(), Some(2));
        let d = CsvDataset::parse("1,2,0.5\r\n3,4,1.5\r\n", TargetColumn::Index(0)).unwrap();
        assert_eq!(d.targets, vec![1., 3.]);
        assert_eq!(d.num_classes(), Some(4));
        let d = CsvDataset::parse("x,y,t\n1,2,3\n", TargetColumn::Name("y".into())).unwrap();
        assert_eq!(
            (d.targets[0], d.feature_names.clone()),
            (2., vec!["x".to_string(), "t".to_string()])
        );
    }

    #[test]
    fn bad_tables_name_the_line_and_column() {
        let e = |t: &str| CsvDataset::parse(t, TargetColumn::Last).unwrap_err();
        assert_eq!(e(""), "empty CSV: no header and no data rows");
        assert_eq!(e("a,b\n"), "no data rows");
        assert_eq!(e("a,b,c\n1,2,3\n4,5\n"), "line 3: 2 columns, expected 3");
        assert_eq!(
            e("a,b\n1,x\n"),
            "line 2, column 2 (b): \"x\" is not a number"
        );
        assert!(CsvDataset::parse("1,2\n", TargetColumn::Name("b".into()))
            .unwrap_err()
            .contains("no header"));
    }
}
