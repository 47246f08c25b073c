//! Horn rules over a knowledge graph and their integer-row form shared with Python.
//!
//! A rule has a head relation atom and a body path of atoms, each atom a relation read forwards
//! or inverted. Three kinds, as AnyBURL (Meilicke et al. 2019) names them:
//! - closed path ("cyclic"): `h(X, Y) <- b1(X, Z1), ..., bk(Z_{k-1}, Y)`, `k` in 1..=3;
//! - acyclic with an end constant ("AC1"): `q(X, c) <- b1(X, A1), ..., bk(A_{k-1}, d)`;
//! - acyclic with a dangling end ("AC2"): `q(X, c) <- b1(X, A1), ..., bk(A_{k-1}, A_k)`;
//!
//! where for acyclic rules (`k` in 1..=2) the *oriented head* `q(x, y)` is `h(x, y)`, or
//! `h(y, x)` with `head_inverse`. Closed rules are kept with a forward head: an inverted head is
//! the same rule with the body path reversed.
//!
//! Row form (int64, [`ROW`] columns): `(kind, head, head_inverse, constant, end, r1, i1, r2, i2,
//! r3, i3)`, unused atoms `r = -1, i = 0`, constants `-1` where a kind has none.

use crate::error::{Error, Result};

/// Columns of a rule row.
pub const ROW: usize = 11;
/// Longest closed-path body.
pub const MAX_CLOSED: usize = 3;
/// Longest acyclic body.
pub const MAX_ACYCLIC: usize = 2;

/// One body atom: relation `rel` read from the previous variable to the next (`inverse`:
/// `rel(next, previous)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Atom {
    pub rel: u32,
    pub inverse: bool,
}

impl Atom {
    pub fn new(rel: u32, inverse: bool) -> Atom {
        Atom { rel, inverse }
    }

    /// The same edge walked the other way.
    pub fn flipped(self) -> Atom {
        Atom::new(self.rel, !self.inverse)
    }

    /// `2 * rel + inverse`: the index of the (relation, direction) block.
    pub fn code(self) -> u32 {
        2 * self.rel + self.inverse as u32
    }

    pub fn from_code(code: u32) -> Atom {
        Atom::new(code / 2, code % 2 == 1)
    }
}

/// The three rule shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `h(X, Y) <- path(X, Y)`.
    Closed = 0,
    /// `q(X, c) <- path(X, d)`.
    EndConstant = 1,
    /// `q(X, c) <- path(X, _)`.
    Dangling = 2,
}

impl Kind {
    /// The kind as error messages name it, with its article, in the words of the Python
    /// layer's `KINDS` ("closed", "end_constant", "dangling").
    fn article_name(self) -> &'static str {
        match self {
            Kind::Closed => "a closed",
            Kind::EndConstant => "an end-constant",
            Kind::Dangling => "a dangling",
        }
    }
}

/// One rule; `body[..len]` are its atoms, the rest are default atoms (so equal rules compare
/// and hash equal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rule {
    pub kind: Kind,
    pub head: u32,
    /// Acyclic rules: the head reads `h(c, X)`. Always false for closed rules.
    pub head_inverse: bool,
    /// Acyclic rules: `c`.
    pub constant: u32,
    /// End-constant rules: `d`.
    pub end: u32,
    len: u8,
    atoms: [Atom; MAX_CLOSED],
}

impl Rule {
    /// A closed-path rule `head(X, Y) <- body`.
    pub fn closed(head: u32, body: &[Atom]) -> Rule {
        Rule::make(Kind::Closed, head, false, 0, 0, body)
    }

    /// An acyclic rule; `end` is used by [`Kind::EndConstant`] only.
    pub fn acyclic(
        kind: Kind,
        head: u32,
        head_inverse: bool,
        constant: u32,
        end: u32,
        body: &[Atom],
    ) -> Rule {
        let end = if kind == Kind::EndConstant { end } else { 0 };
        Rule::make(kind, head, head_inverse, constant, end, body)
    }

    fn make(kind: Kind, head: u32, hi: bool, constant: u32, end: u32, body: &[Atom]) -> Rule {
        debug_assert!((1..=MAX_CLOSED).contains(&body.len()));
        let mut atoms = [Atom::default(); MAX_CLOSED];
        atoms[..body.len()].copy_from_slice(body);
        Rule {
            kind,
            head,
            head_inverse: hi,
            constant,
            end,
            len: body.len() as u8,
            atoms,
        }
    }

    /// The body atoms.
    pub fn body(&self) -> &[Atom] {
        &self.atoms[..self.len as usize]
    }

    /// The oriented head `q` of an acyclic rule (or `h` forwards for a closed one).
    pub fn head_atom(&self) -> Atom {
        Atom::new(self.head, self.head_inverse)
    }

    /// Whether the body only restates the head (`h(X,Y) <- h(X,Y)`, `q(X,c) <- q(X,c)`).
    pub fn is_trivial(&self) -> bool {
        let same = self.len == 1 && self.atoms[0] == self.head_atom();
        match self.kind {
            Kind::Closed => same,
            Kind::EndConstant => same && self.end == self.constant,
            Kind::Dangling => false,
        }
    }

    /// The row form (see the module docs).
    pub fn to_row(&self) -> [i64; ROW] {
        let acyclic = self.kind != Kind::Closed;
        let mut row = [
            self.kind as i64,
            self.head as i64,
            self.head_inverse as i64,
            if acyclic { self.constant as i64 } else { -1 },
            if self.kind == Kind::EndConstant {
                self.end as i64
            } else {
                -1
            },
            -1,
            0,
            -1,
            0,
            -1,
            0,
        ];
        for (k, a) in self.body().iter().enumerate() {
            row[5 + 2 * k] = a.rel as i64;
            row[6 + 2 * k] = a.inverse as i64;
        }
        row
    }

    /// Parses and validates row `k` of a rule table.
    pub fn from_row(row: &[i64], n_ent: usize, n_rel: usize, k: usize) -> Result<Rule> {
        let bad = |what: &str| Error::Value(format!("rules[{k}]: {what}"));
        if row.len() != ROW {
            return Err(Error::len(format!("rules[{k}]"), ROW, row.len()));
        }
        let index = |col: usize, size: usize, what: &str| -> Result<u32> {
            let v = row[col];
            if v < 0 || v as usize >= size {
                return Err(Error::Index {
                    arg: format!("rules[{k}] ({what})"),
                    index: v,
                    size,
                });
            }
            Ok(v as u32)
        };
        let flag = |col: usize, what: &str| -> Result<bool> {
            match row[col] {
                0 => Ok(false),
                1 => Ok(true),
                v => Err(bad(&format!("{what} must be 0 or 1, got {v}"))),
            }
        };
        let kind = match row[0] {
            0 => Kind::Closed,
            1 => Kind::EndConstant,
            2 => Kind::Dangling,
            v => return Err(bad(&format!("kind must be 0, 1 or 2, got {v}"))),
        };
        let head = index(1, n_rel, "head")?;
        let head_inverse = flag(2, "head_inverse")?;
        let mut body = Vec::with_capacity(MAX_CLOSED);
        for a in 0..MAX_CLOSED {
            let (r, i) = (5 + 2 * a, 6 + 2 * a);
            if row[r] == -1 && row[i] == 0 {
                continue;
            }
            if body.len() < a {
                return Err(bad("body atoms must come first, without gaps"));
            }
            body.push(Atom::new(
                index(r, n_rel, "body relation")?,
                flag(i, "body inverse")?,
            ));
        }
        let max = if kind == Kind::Closed {
            MAX_CLOSED
        } else {
            MAX_ACYCLIC
        };
        if body.is_empty() || body.len() > max {
            return Err(bad(&format!(
                "{} rule needs 1 to {max} body atoms, got {}",
                kind.article_name(),
                body.len()
            )));
        }
        let none = |col: usize, what: &str| -> Result<()> {
            if row[col] != -1 {
                let name = kind.article_name();
                return Err(bad(&format!("{name} rule has no {what} (expected -1)")));
            }
            Ok(())
        };
        match kind {
            Kind::Closed => {
                if head_inverse {
                    return Err(bad("closed rules are stored with head_inverse = 0"));
                }
                none(3, "constant")?;
                none(4, "end constant")?;
                Ok(Rule::closed(head, &body))
            }
            Kind::EndConstant => {
                let c = index(3, n_ent, "constant")?;
                let d = index(4, n_ent, "end")?;
                Ok(Rule::acyclic(kind, head, head_inverse, c, d, &body))
            }
            Kind::Dangling => {
                let c = index(3, n_ent, "constant")?;
                none(4, "end constant")?;
                Ok(Rule::acyclic(kind, head, head_inverse, c, 0, &body))
            }
        }
    }
}

/// A path walked backwards: atoms in reverse order, each flipped.
pub fn reversed(atoms: &[Atom]) -> Vec<Atom> {
    atoms.iter().rev().map(|a| a.flipped()).collect()
}

/// Parses a whole `(m, ROW)` table.
pub fn parse_rows(rows: &[i64], n_ent: usize, n_rel: usize) -> Result<Vec<Rule>> {
    if !rows.len().is_multiple_of(ROW) {
        return Err(Error::Value(format!("rules: expected shape (m, {ROW})")));
    }
    rows.chunks_exact(ROW)
        .enumerate()
        .map(|(k, r)| Rule::from_row(r, n_ent, n_rel, k))
        .collect()
}
