//! The reporting-unit tree (province → districts → communes, or any other shape): data loaded
//! from a file, never hard-coded, because the 2025 reform lets communes report straight to the
//! province and provinces report on to the national level.

use super::CodeMap;
use super::codes::UnitCode;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::Path;

/// The fictional province shipped in `examples/`, embedded so `tonghop demo` and a first
/// `tonghop serve` work with no files at hand.
pub const EXAMPLE_UNITS_TOML: &str = include_str!("../../examples/binh-son/units.toml");

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingUnit {
    pub code: UnitCode,
    pub name: String,
    #[serde(default)]
    pub parent: Option<UnitCode>,
    /// "province", "district", "commune"...: data sets name the levels that report.
    pub level: String,
    pub population: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitsFile {
    units: Vec<ReportingUnit>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnitsError {
    #[error("cannot read units file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("units file is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("units file is not valid CSV (columns code,name,parent,level,population): {0}")]
    Csv(#[from] csv::Error),
    #[error("units: {0}")]
    Inconsistent(String),
}

/// A checked tree: codes unique, exactly one root, every parent exists, no cycles.
#[derive(Debug, Clone)]
pub struct UnitTree {
    units: Vec<ReportingUnit>,
    index: CodeMap<UnitCode, usize>,
    children: CodeMap<UnitCode, Vec<usize>>,
    root: usize,
}

impl UnitTree {
    pub fn example() -> Result<Self, UnitsError> {
        Self::from_toml(EXAMPLE_UNITS_TOML)
    }

    /// Loads `.toml` or `.csv` (by extension).
    pub fn load(path: &Path) -> Result<Self, UnitsError> {
        let text = std::fs::read_to_string(path).map_err(|source| UnitsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => Self::from_csv(&text),
            _ => Self::from_toml(&text),
        }
    }

    pub fn from_toml(text: &str) -> Result<Self, UnitsError> {
        let file: UnitsFile = toml::from_str(text)?;
        Self::build(file.units)
    }

    /// CSV with a header row `code,name,parent,level,population`; an empty parent marks the root.
    pub fn from_csv(text: &str) -> Result<Self, UnitsError> {
        #[derive(Deserialize)]
        struct Row {
            code: UnitCode,
            name: String,
            parent: String,
            level: String,
            population: u64,
        }
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut units = Vec::new();
        for row in reader.deserialize::<Row>() {
            let row = row?;
            let parent = if row.parent.is_empty() {
                None
            } else {
                Some(UnitCode::parse(&row.parent).map_err(|e| {
                    UnitsError::Inconsistent(format!(
                        "unit {} has parent {:?}, which {e}",
                        row.code, row.parent
                    ))
                })?)
            };
            units.push(ReportingUnit {
                code: row.code,
                name: row.name,
                parent,
                level: row.level,
                population: row.population,
            });
        }
        Self::build(units)
    }

    pub fn build(units: Vec<ReportingUnit>) -> Result<Self, UnitsError> {
        let bad = |msg: String| Err(UnitsError::Inconsistent(msg));
        let mut index = CodeMap::default();
        for (i, unit) in units.iter().enumerate() {
            if unit.name.trim().is_empty() {
                return bad(format!("unit {} has an empty name", unit.code));
            }
            if unit.level.trim().is_empty() {
                return bad(format!("unit {} has an empty level", unit.code));
            }
            if index.insert(unit.code.clone(), i).is_some() {
                return bad(format!("unit {} is listed twice", unit.code));
            }
        }
        let mut children: CodeMap<UnitCode, Vec<usize>> = CodeMap::default();
        let mut roots = Vec::new();
        for (i, unit) in units.iter().enumerate() {
            match &unit.parent {
                None => roots.push(i),
                Some(parent) if !index.contains_key(parent) => {
                    return bad(format!(
                        "unit {} has parent {parent}, which is not in the file",
                        unit.code
                    ));
                }
                Some(parent) => children.entry(parent.clone()).or_default().push(i),
            }
        }
        let root = match roots.as_slice() {
            [root] => *root,
            [] => return bad("no root unit (one unit must have no parent)".into()),
            many => {
                let codes: Vec<&str> = many.iter().map(|&i| units[i].code.as_str()).collect();
                return bad(format!(
                    "{} root units ({}); exactly one unit may have no parent",
                    many.len(),
                    codes.join(", ")
                ));
            }
        };
        let tree = UnitTree {
            units,
            index,
            children,
            root,
        };
        // Every unit must hang under the root; anything else sits on a cycle.
        let reachable: HashSet<&UnitCode> = tree
            .subtree(&tree.units[root].code)
            .iter()
            .map(|u| &u.code)
            .collect();
        if let Some(lost) = tree.units.iter().find(|u| !reachable.contains(&u.code)) {
            return bad(format!("unit {} is part of a parent cycle", lost.code));
        }
        Ok(tree)
    }

    pub fn root(&self) -> &ReportingUnit {
        &self.units[self.root]
    }

    pub fn get(&self, code: &UnitCode) -> Option<&ReportingUnit> {
        self.index.get(code).map(|&i| &self.units[i])
    }

    pub fn find(&self, code: &str) -> Option<&ReportingUnit> {
        UnitCode::parse(code).ok().and_then(|c| self.get(&c))
    }

    pub fn all(&self) -> &[ReportingUnit] {
        &self.units
    }

    pub fn children(&self, code: &UnitCode) -> impl Iterator<Item = &ReportingUnit> {
        self.children
            .get(code)
            .into_iter()
            .flatten()
            .map(|&i| &self.units[i])
    }

    /// The unit and everything below it, parents before children.
    pub fn subtree(&self, code: &UnitCode) -> Vec<&ReportingUnit> {
        let Some(&start) = self.index.get(code) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            out.push(&self.units[i]);
            if let Some(kids) = self.children.get(&self.units[i].code) {
                stack.extend(kids.iter().rev());
            }
        }
        out
    }

    /// Whether `descendant` is `ancestor` or lies below it.
    pub fn is_within(&self, descendant: &UnitCode, ancestor: &UnitCode) -> bool {
        let mut current = self.get(descendant);
        while let Some(unit) = current {
            if &unit.code == ancestor {
                return true;
            }
            current = unit.parent.as_ref().and_then(|p| self.get(p));
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &str) -> UnitCode {
        UnitCode::parse(raw).expect("valid code")
    }

    #[test]
    fn example_province_has_nine_or_more_districts() {
        let tree = UnitTree::example().expect("example units load");
        assert_eq!(tree.root().level, "province");
        let districts: Vec<_> = tree.children(&tree.root().code).collect();
        assert!(districts.len() >= 9, "{} districts", districts.len());
        let sum: u64 = districts.iter().map(|d| d.population).sum();
        assert_eq!(
            sum,
            tree.root().population,
            "province population = Σ districts"
        );
    }

    #[test]
    fn csv_and_subtrees() {
        let tree = UnitTree::from_csv(
            "code,name,parent,level,population\n\
             P,Tỉnh P,,province,300\n\
             D1,Huyện 1,P,district,100\n\
             D2,Huyện 2,P,district,200\n\
             C1,Xã 1,D1,commune,40\n",
        )
        .expect("valid csv");
        let codes: Vec<&str> = tree
            .subtree(&code("D1"))
            .iter()
            .map(|u| u.code.as_str())
            .collect();
        assert_eq!(codes, ["D1", "C1"]);
        assert!(tree.is_within(&code("C1"), &code("P")));
        assert!(!tree.is_within(&code("C1"), &code("D2")));
    }

    #[test]
    fn broken_trees_are_refused_with_the_unit_named() {
        let two_roots = "code,name,parent,level,population\nA,A,,province,1\nB,B,,province,1\n";
        let err = UnitTree::from_csv(two_roots).expect_err("two roots");
        assert!(err.to_string().contains("A, B"), "{err}");
        let orphan = "code,name,parent,level,population\nA,A,,province,1\nB,B,Z,district,1\n";
        let err = UnitTree::from_csv(orphan).expect_err("unknown parent");
        assert!(err.to_string().contains("parent Z"), "{err}");
        let cycle = "code,name,parent,level,population\nA,A,,province,1\nB,B,C,district,1\nC,C,B,district,1\n";
        let err = UnitTree::from_csv(cycle).expect_err("cycle");
        assert!(err.to_string().contains("cycle"), "{err}");
        let dup = "code,name,parent,level,population\nA,A,,province,1\nA,B,A,district,1\n";
        assert!(UnitTree::from_csv(dup).is_err());
    }
}
