//! Training: one call runs one epoch over the training triples, GIL released, multithreaded.
//!
//! - sLCWA (negative sampling): each positive gets `n_neg` negatives by replacing its head or
//!   its tail with a random other entity (never the one replaced, as PyKEEN; the side uniform,
//!   or Bernoulli per relation: the head with probability `tph / (tph + hpt)`, Wang et al.
//!   2014). With `shared_negatives`, a chunk of positives shares one set of negative entities
//!   (the side drawn per chunk, uniform; one of them may be a positive's own), scored as one
//!   product of the chunk's query rows with the negative rows. Losses: margin ranking,
//!   softplus, self-adversarial.
//! - 1-vs-all (`loss = Bce` or `CrossEntropy`): every `(h, r, ?)` and `(?, r, t)` query of the training set is
//!   scored against all entities with its known answers as labels (KvsAll); two GEMMs give the
//!   gradients (BCE, or softmax cross-entropy per answer). Dot-product models (DistMult,
//!   ComplEx) only.
//!
//! Batches are split into fixed chunks; each chunk draws from its own random stream
//! `(seed, epoch, batch, chunk)` and accumulates row gradients, which are merged in chunk order.
//! So a seed gives the same embeddings for any thread count. The optimizer (row-wise Adagrad or
//! Adam) then updates only the rows the batch touched.

use super::loss::{bce_rows, ce_rows, negative_sampling, Loss};
use super::regular::{regularise, Regulariser};
use super::rng::Rng;
use super::score::{form_rows, prepare, EntityPrep};
use super::sparse::{RowGrads, SparseOpt};
use super::{Form, Model, Side, Tables};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::linalg::{gemm, Gemm, Mat, MatMut};
use crate::par::Par;
use crate::simd::Level;

/// Positives (or 1-vs-all queries) per parallel chunk.
const CHUNK: usize = 32;
/// Negatives per positive at most: a chunk's buffers hold `CHUNK * n_neg` negatives, so the
/// bound keeps them to tens of MB (papers use up to a few thousand).
pub const MAX_NEGATIVES: usize = 1 << 16;

/// How the corrupted side of a negative is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampler {
    Uniform,
    Bernoulli,
}

/// Everything about an epoch except the parameters.
#[derive(Clone, Debug)]
pub struct Config {
    pub loss: Loss,
    pub n_neg: usize,
    pub sampler: Sampler,
    pub shared_negatives: bool,
    pub batch_size: usize,
    pub opt: SparseOpt,
    /// Penalty on the rows of each positive (or query): a mean over the batch's own positives
    /// (or queries), as the loss (the last batch of an epoch may be short).
    pub regulariser: Option<(Regulariser, f64)>,
    /// Rescale touched entity rows to unit L2 norm after each update (TransE's constraint).
    pub normalize_entities: bool,
    pub seed: u64,
}

/// The trained parameters and the optimizer state.
pub struct Params<'a, T> {
    pub ent: &'a mut [T],
    pub rel: &'a mut [T],
    pub d_e: usize,
    pub d_r: usize,
    /// `n_states` copies of the entity table's shape (see [`SparseOpt::n_states`]).
    pub ent_state: &'a mut [T],
    pub rel_state: &'a mut [T],
    /// Optimizer updates done so far (Adam's bias correction); advanced by the epoch.
    pub step: u64,
}

/// Per relation: the probability of corrupting the head under the Bernoulli sampler,
/// `tph / (tph + hpt)` (average tails per head, heads per tail).
pub fn bernoulli_probs(triples: &[i64], n_rel: usize) -> Result<Vec<f64>> {
    let mut pairs: Vec<(i64, i64, i64)> = triples
        .chunks_exact(3)
        .map(|t| (t[1], t[0], t[2]))
        .collect();
    pairs.sort_unstable();
    let mut probs = crate::mem::try_vec(n_rel, 0.5, "n_relations")?;
    let mut start = 0;
    while start < pairs.len() {
        let r = pairs[start].0;
        let end = start + pairs[start..].partition_point(|p| p.0 == r);
        let group = &pairs[start..end];
        let n = group.len() as f64;
        let mut heads: Vec<i64> = group.iter().map(|p| p.1).collect();
        let mut tails: Vec<i64> = group.iter().map(|p| p.2).collect();
        heads.sort_unstable();
        heads.dedup();
        tails.sort_unstable();
        tails.dedup();
        let (tph, hpt) = (n / heads.len() as f64, n / tails.len() as f64);
        probs[r as usize] = tph / (tph + hpt);
        start = end;
    }
    Ok(probs)
}

/// What one chunk hands back: its loss and row gradients.
struct ChunkOut<T> {
    loss: f64,
    ent: RowGrads<T>,
    rel: RowGrads<T>,
}

/// Scratch rows for one triple's gradient.
struct Scratch<T> {
    gh: Vec<T>,
    gr: Vec<T>,
    gt: Vec<T>,
}

impl<T: Float> Scratch<T> {
    fn new(d_e: usize, d_r: usize) -> Self {
        Scratch {
            gh: vec![T::ZERO; d_e],
            gr: vec![T::ZERO; d_r],
            gt: vec![T::ZERO; d_e],
        }
    }

    /// Adds `up * d score(h, r, t)` to the chunk's row gradients (`prep`: the prepared
    /// relation rows).
    #[allow(clippy::too_many_arguments)]
    fn add_triple<M: Model>(
        &mut self,
        model: M,
        t: &Tables<'_, T>,
        prep: &Prepared<T>,
        (h, r, tl): (usize, usize, usize),
        up: T,
        ent: &mut RowGrads<T>,
        rel: &mut RowGrads<T>,
    ) {
        if up == T::ZERO {
            return;
        }
        self.gh.fill(T::ZERO);
        self.gr.fill(T::ZERO);
        self.gt.fill(T::ZERO);
        let (gh, gr, gt) = (&mut self.gh, &mut self.gr, &mut self.gt);
        model.grad_prepared(t.e(h), prep.row(r), t.e(tl), up, gh, gr, gt);
        ent.add(h as i64, &self.gh);
        rel.add(r as i64, &self.gr);
        ent.add(tl as i64, &self.gt);
    }
}

/// Relation rows in the model's prepared form (RotatE: cosines and sines), made once per batch.
struct Prepared<T> {
    rows: Vec<T>,
    width: usize,
}

impl<T: Float> Prepared<T> {
    fn new<M: Model>(model: &M, t: &Tables<'_, T>) -> Self {
        let width = model.prepared_width(t.d_r);
        let mut rows = vec![T::ZERO; t.n_rel * width];
        for (r, out) in rows
            .chunks_exact_mut(width.max(1))
            .enumerate()
            .take(t.n_rel)
        {
            model.prepare(t.r(r), out);
        }
        Prepared { rows, width }
    }

    #[inline(always)]
    fn row(&self, r: usize) -> &[T] {
        &self.rows[r * self.width..(r + 1) * self.width]
    }
}

/// Adds the penalty of entity row `e` (or relation row) to the chunk's gradients.
fn penalise<T: Float>(
    reg: Option<(Regulariser, f64)>,
    scale: f64,
    row: &[T],
    complex: bool,
    id: i64,
    grads: &mut RowGrads<T>,
) -> f64 {
    match reg {
        Some((kind, weight)) if weight > 0.0 && !row.is_empty() => {
            let g = grads.row(id);
            regularise(kind, weight * scale, row, row.len(), complex, g).unwrap_or(0.0)
        }
        _ => 0.0,
    }
}

/// A uniform entity other than `replaced` (as PyKEEN's basic sampler: a corruption never
/// reproduces the positive), from one draw; with a single entity, that entity.
fn other_entity(rng: &mut Rng, n_ent: usize, replaced: usize) -> usize {
    if n_ent < 2 {
        return rng.below(n_ent);
    }
    let e = rng.below(n_ent - 1);
    if e >= replaced {
        e + 1
    } else {
        e
    }
}

/// One chunk of positives under negative sampling.
#[allow(clippy::too_many_arguments)]
fn slcwa_chunk<T: Float + Gemm, M: Model>(
    level: Level,
    model: M,
    t: &Tables<'_, T>,
    prep: &Prepared<T>,
    positives: &[[usize; 3]],
    head_prob: &[f64],
    cfg: &Config,
    (scale, reg_scale): (f64, f64),
    mut rng: Rng,
) -> ChunkOut<T> {
    let (c, n_neg, n_ent) = (positives.len(), cfg.n_neg, t.n_ent);
    let mut ent = RowGrads::new(n_ent, t.d_e);
    let mut rel = RowGrads::new(t.n_rel, t.d_r);
    let pos: Vec<T> = positives
        .iter()
        .map(|&[h, r, tl]| model.score_prepared(t.e(h), prep.row(r), t.e(tl)))
        .collect();
    // Negative triples, row-major (c, n_neg).
    let mut negs: Vec<[usize; 3]> = Vec::with_capacity(c * n_neg);
    let mut neg = vec![T::ZERO; c * n_neg];
    if cfg.shared_negatives {
        // The corrupted side, drawn from the chunk's own stream (every chunk, every batch size).
        let side = if rng.uniform() < 0.5 {
            Side::Tail
        } else {
            Side::Head
        };
        let shared: Vec<usize> = (0..n_neg).map(|_| rng.below(n_ent)).collect();
        let mut rows = Vec::with_capacity(n_neg * t.d_e);
        for &e in &shared {
            rows.extend_from_slice(t.e(e));
        }
        let small = Tables {
            ent: &rows,
            n_ent: n_neg,
            ..*t
        };
        let mut q = vec![T::ZERO; c * t.d_e];
        for (row, &[h, r, tl]) in q.chunks_exact_mut(t.d_e).zip(positives) {
            let x = if side == Side::Tail { h } else { tl };
            model.query(t.e(x), t.r(r), side, row);
        }
        let prep = prepare(Par::Seq, model.form(), &small);
        form_rows(Par::Seq, level, model.form(), &q, &small, &prep, &mut neg);
        for &[h, r, tl] in positives {
            for &e in &shared {
                negs.push(if side == Side::Tail {
                    [h, r, e]
                } else {
                    [e, r, tl]
                });
            }
        }
    } else {
        for &[h, r, tl] in positives {
            for _ in 0..n_neg {
                let corrupt_head = match cfg.sampler {
                    Sampler::Uniform => rng.uniform() < 0.5,
                    Sampler::Bernoulli => rng.uniform() < head_prob[r],
                };
                let e = other_entity(&mut rng, n_ent, if corrupt_head { h } else { tl });
                negs.push(if corrupt_head { [e, r, tl] } else { [h, r, e] });
            }
        }
        for (s, &[h, r, tl]) in neg.iter_mut().zip(&negs) {
            *s = model.score_prepared(t.e(h), prep.row(r), t.e(tl));
        }
    }
    let mut dpos = vec![T::ZERO; c];
    let mut dneg = vec![T::ZERO; c * n_neg];
    let mut loss = negative_sampling(cfg.loss, scale, &pos, &neg, &mut dpos, &mut dneg);
    let mut scratch = Scratch::new(t.d_e, t.d_r);
    for (&[h, r, tl], &up) in positives.iter().zip(&dpos) {
        scratch.add_triple(model, t, prep, (h, r, tl), up, &mut ent, &mut rel);
    }
    for (&[h, r, tl], &up) in negs.iter().zip(&dneg) {
        scratch.add_triple(model, t, prep, (h, r, tl), up, &mut ent, &mut rel);
    }
    let (ce, cr) = model.complex_rows();
    for &[h, r, tl] in positives {
        loss += penalise(cfg.regulariser, reg_scale, t.e(h), ce, h as i64, &mut ent);
        loss += penalise(cfg.regulariser, reg_scale, t.r(r), cr, r as i64, &mut rel);
        loss += penalise(cfg.regulariser, reg_scale, t.e(tl), ce, tl as i64, &mut ent);
    }
    ChunkOut { loss, ent, rel }
}

/// The 1-vs-all queries of a training set: `(side, fixed entity, relation)` and the sorted
/// known answers of each.
struct Queries {
    keys: Vec<(Side, usize, usize)>,
    label_ptr: Vec<usize>,
    labels: Vec<i64>,
}

fn one_vs_all_queries(triples: &[i64]) -> Queries {
    let mut q = Queries {
        keys: Vec::new(),
        label_ptr: vec![0],
        labels: Vec::new(),
    };
    for side in [Side::Tail, Side::Head] {
        // (fixed, relation, answer)
        let mut v: Vec<(i64, i64, i64)> = triples
            .chunks_exact(3)
            .map(|t| match side {
                Side::Tail => (t[0], t[1], t[2]),
                Side::Head => (t[2], t[1], t[0]),
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        let mut start = 0;
        while start < v.len() {
            let key = (v[start].0, v[start].1);
            let end = start + v[start..].partition_point(|p| (p.0, p.1) == key);
            q.keys.push((side, key.0 as usize, key.1 as usize));
            q.labels.extend(v[start..end].iter().map(|p| p.2));
            q.label_ptr.push(q.labels.len());
            start = end;
        }
    }
    q
}

/// Checks the parameters and the triples; returns the number of entities and relations.
fn check<T: Float, M: Model>(
    model: &M,
    p: &Params<'_, T>,
    triples: &[i64],
    cfg: &Config,
) -> Result<(usize, usize)> {
    let t = Tables::new(model, &*p.ent, p.d_e, &*p.rel, p.d_r)?;
    t.check_triples(triples, "triples")?;
    let k = cfg.opt.n_states();
    if p.ent_state.len() != k * p.ent.len() || p.rel_state.len() != k * p.rel.len() {
        return Err(Error::Value(format!(
            "optimizer state: {} needs {k} arrays the size of each table",
            match cfg.opt {
                SparseOpt::Adagrad { .. } => "adagrad",
                SparseOpt::Adam { .. } => "adam",
            }
        )));
    }
    if cfg.batch_size == 0 {
        return Err(Error::Value("batch_size: must be >= 1".into()));
    }
    if triples.is_empty() {
        return Err(Error::Value("triples: the training set is empty".into()));
    }
    // A NaN or infinity would spread through every row it touches, and the loss with it.
    let arrays = [
        ("ent", &*p.ent),
        ("rel", &*p.rel),
        ("ent_state", &*p.ent_state),
        ("rel_state", &*p.rel_state),
    ];
    for (name, a) in arrays {
        if !crate::optim::grad::all_finite(Par::Seq, crate::simd::detect(), &[a]) {
            return Err(Error::Value(format!("{name}: contains NaN or infinity")));
        }
    }
    match cfg.loss {
        Loss::Bce { .. } | Loss::CrossEntropy if model.form() != Form::Dot => {
            Err(Error::Value(format!(
                "loss: 1-vs-all 'bce' and 'ce' need a dot-product model (distmult, complex), \
                 not {}",
                model.name()
            )))
        }
        Loss::Bce { .. } | Loss::CrossEntropy => Ok((t.n_ent, t.n_rel)),
        _ if cfg.n_neg == 0 => Err(Error::Value("num_negatives: must be >= 1".into())),
        _ if cfg.n_neg > MAX_NEGATIVES => Err(Error::Value(format!(
            "num_negatives: at most {MAX_NEGATIVES} per positive, got {}",
            cfg.n_neg
        ))),
        _ if cfg.shared_negatives && cfg.sampler == Sampler::Bernoulli => Err(Error::Value(
            concat!(
                "sampler: 'bernoulli' picks the side per relation, which negatives shared ",
                "by a chunk of positives cannot; use sampler='uniform' with shared_negatives"
            )
            .into(),
        )),
        _ => Ok((t.n_ent, t.n_rel)),
    }
}

/// Refuses an epoch of `items` in batches of `batch_size` whose updates would take the step
/// counter past `u64::MAX`, before the first batch changes anything.
fn check_steps(step: u64, items: usize, batch_size: usize) -> Result<()> {
    let batches = items.div_ceil(batch_size) as u64;
    step.checked_add(batches).map(|_| ()).ok_or_else(|| {
        Error::Value(format!(
            "step: {step} + {batches} updates of this epoch overflow the update counter"
        ))
    })
}

/// Applies the batch's gradients and advances the step.
fn update<T: Float>(
    par: Par,
    p: &mut Params<'_, T>,
    cfg: &Config,
    ent: &RowGrads<T>,
    rel: &RowGrads<T>,
) -> Result<()> {
    p.step = p
        .step
        .checked_add(1)
        .ok_or_else(|| Error::Value("step: the update counter overflows".into()))?;
    cfg.opt.apply(par, p.ent, p.ent_state, p.step, ent)?;
    cfg.opt.apply(par, p.rel, p.rel_state, p.step, rel)?;
    if cfg.normalize_entities {
        let d = p.d_e;
        for &id in ent.ids() {
            let row = &mut p.ent[id as usize * d..(id as usize + 1) * d];
            let norm = row.iter().fold(T::ZERO, |a, &v| a + v * v).sqrt();
            if norm > T::ZERO {
                for v in row.iter_mut() {
                    *v = *v / norm;
                }
            }
        }
    }
    Ok(())
}

/// One epoch of training over `triples (n, 3)`; returns the summed loss of its batches divided
/// by the number of batches. `head_prob` (per relation, see [`bernoulli_probs`]) is used by the
/// Bernoulli sampler only.
#[allow(clippy::too_many_arguments)]
pub fn train_epoch<T: Float + Gemm, M: Model>(
    par: Par,
    level: Level,
    model: M,
    p: &mut Params<'_, T>,
    triples: &[i64],
    head_prob: &[f64],
    epoch: u64,
    cfg: &Config,
) -> Result<f64> {
    let (n_ent, n_rel) = check(&model, p, triples, cfg)?;
    if cfg.sampler == Sampler::Bernoulli {
        if head_prob.len() != n_rel {
            return Err(Error::len("head_prob", n_rel, head_prob.len()));
        }
        if let Some(r) = head_prob.iter().position(|q| !(0.0..=1.0).contains(q)) {
            return Err(Error::Value(format!(
                "head_prob[{r}]: must be a probability in [0, 1], got {}",
                head_prob[r]
            )));
        }
    }
    let (d_e, d_r) = (p.d_e, p.d_r);
    let mut ent_g = RowGrads::new(n_ent, d_e);
    let mut rel_g = RowGrads::new(n_rel, d_r);
    let mut total = 0.0;
    let mut batches = 0usize;
    if matches!(cfg.loss, Loss::Bce { .. } | Loss::CrossEntropy) {
        let q = one_vs_all_queries(triples);
        check_steps(p.step, q.keys.len(), cfg.batch_size)?;
        let mut order: Vec<usize> = (0..q.keys.len()).collect();
        Rng::new(cfg.seed, epoch, u64::MAX, 0).shuffle(&mut order);
        for batch in order.chunks(cfg.batch_size) {
            // Fallible buffers: the first batch is the largest, so running out of memory is an
            // error before anything is updated.
            total +=
                one_vs_all_batch(par, level, model, p, &q, batch, cfg, &mut ent_g, &mut rel_g)?;
            update(par, p, cfg, &ent_g, &rel_g)?;
            ent_g.clear();
            rel_g.clear();
            batches += 1;
        }
        return Ok(total / batches.max(1) as f64);
    }
    let all: Vec<[usize; 3]> = triples
        .chunks_exact(3)
        .map(|t| [t[0] as usize, t[1] as usize, t[2] as usize])
        .collect();
    check_steps(p.step, all.len(), cfg.batch_size)?;
    let mut order: Vec<usize> = (0..all.len()).collect();
    Rng::new(cfg.seed, epoch, u64::MAX, 0).shuffle(&mut order);
    for (b, batch) in order.chunks(cfg.batch_size).enumerate() {
        let positives: Vec<[usize; 3]> = batch.iter().map(|&i| all[i]).collect();
        // The loss is a mean over the batch; so is the penalty (over the batch's own size: the
        // last batch of an epoch may be short).
        let scale = cfg.loss.mean_scale(positives.len(), cfg.n_neg);
        let reg_scale = 1.0 / positives.len() as f64;
        let outs = {
            let t = Tables::new(&model, &*p.ent, d_e, &*p.rel, d_r)?;
            let prep = Prepared::new(&model, &t);
            let jobs: Vec<(usize, &[[usize; 3]])> = positives.chunks(CHUNK).enumerate().collect();
            par.for_work(positives.len() * cfg.n_neg * d_e)
                .map(jobs, |(c, chunk)| {
                    let rng = Rng::new(cfg.seed, epoch, b as u64, c as u64);
                    let scales = (scale, reg_scale);
                    slcwa_chunk(level, model, &t, &prep, chunk, head_prob, cfg, scales, rng)
                })
        };
        for out in &outs {
            total += out.loss;
            ent_g.merge(&out.ent);
            rel_g.merge(&out.rel);
        }
        update(par, p, cfg, &ent_g, &rel_g)?;
        ent_g.clear();
        rel_g.clear();
        batches += 1;
    }
    Ok(total / batches.max(1) as f64)
}

/// One 1-vs-all batch: scores of the queries against every entity (one GEMM), the loss, and the
/// gradients `dQ = dS E` and `dE = dS^T Q` (two GEMMs); fills `ent_g` (every entity) and
/// `rel_g`. Returns the batch loss.
#[allow(clippy::too_many_arguments)]
fn one_vs_all_batch<T: Float + Gemm, M: Model>(
    par: Par,
    level: Level,
    model: M,
    p: &Params<'_, T>,
    q: &Queries,
    batch: &[usize],
    cfg: &Config,
    ent_g: &mut RowGrads<T>,
    rel_g: &mut RowGrads<T>,
) -> Result<f64> {
    let t = Tables {
        ent: &*p.ent,
        rel: &*p.rel,
        n_ent: p.ent.len() / p.d_e,
        n_rel: p.rel.len() / p.d_r.max(1),
        d_e: p.d_e,
        d_r: p.d_r,
    };
    let (b, n_ent, d) = (batch.len(), t.n_ent, t.d_e);
    let buffer = |n: usize| -> Result<Vec<T>> {
        let len = crate::mem::elements(&[b, n], "batch_size")?;
        crate::mem::try_vec(len, T::ZERO, "batch_size (1-vs-all scores of a batch)")
    };
    let mut qm = buffer(d)?;
    for (row, &k) in qm.chunks_exact_mut(d).zip(batch) {
        let (side, x, r) = q.keys[k];
        model.query(t.e(x), t.r(r), side, row);
    }
    let mut scores = buffer(n_ent)?;
    form_rows(
        par,
        level,
        Form::Dot,
        &qm,
        &t,
        &EntityPrep::Nothing,
        &mut scores,
    );
    let answers: usize = batch
        .iter()
        .map(|&k| q.label_ptr[k + 1] - q.label_ptr[k])
        .sum();
    let scale = match cfg.loss {
        Loss::CrossEntropy => cfg.loss.mean_scale(answers, 1),
        _ => cfg.loss.mean_scale(b, n_ent),
    };
    let mut dscores = buffer(n_ent)?;
    // Row blocks of about 8 CHUNK scores (sizes only: the same blocks, and loss, for any thread
    // count). Blocks of CHUNK rows put a whole batch's loss on one thread.
    let per = (8 * CHUNK / n_ent.max(1)).max(1);
    let rows: Vec<_> = scores
        .chunks(per * n_ent)
        .zip(dscores.chunks_mut(per * n_ent))
        .zip(batch.chunks(per))
        .collect();
    let losses = par.for_work(b * n_ent * 16).map(rows, |((s, ds), keys)| {
        let labels: Vec<&[i64]> = keys
            .iter()
            .map(|&k| &q.labels[q.label_ptr[k]..q.label_ptr[k + 1]])
            .collect();
        match cfg.loss {
            Loss::Bce { label_smoothing } => {
                bce_rows(label_smoothing, scale, s, n_ent, &labels, ds)
            }
            _ => ce_rows(scale, s, n_ent, &labels, ds),
        }
    });
    let mut loss: f64 = losses.iter().sum();
    // dQ (b, d) = dS (b, n_ent) E (n_ent, d); dE (n_ent, d) = dS^T Q.
    let mut dq = buffer(d)?;
    let ds = Mat::new(&dscores, b, n_ent);
    gemm(
        par,
        T::ONE,
        ds,
        Mat::new(t.ent, n_ent, d),
        T::ZERO,
        MatMut::new(&mut dq, b, d),
    );
    let mut de = vec![T::ZERO; n_ent * d];
    gemm(
        par,
        T::ONE,
        ds.t(),
        Mat::new(&qm, b, d),
        T::ZERO,
        MatMut::new(&mut de, n_ent, d),
    );
    for e in 0..n_ent {
        ent_g.add(e as i64, &de[e * d..(e + 1) * d]);
    }
    let (mut dx, mut dr) = (vec![T::ZERO; d], vec![T::ZERO; t.d_r]);
    let (ce, cr) = model.complex_rows();
    let reg_scale = 1.0 / b as f64; // a mean over the batch, as the loss
    for (row, &k) in dq.chunks_exact(d).zip(batch) {
        let (side, x, r) = q.keys[k];
        dx.fill(T::ZERO);
        dr.fill(T::ZERO);
        model.query_grad(t.e(x), t.r(r), side, row, &mut dx, &mut dr);
        ent_g.add(x as i64, &dx);
        rel_g.add(r as i64, &dr);
        loss += penalise(cfg.regulariser, reg_scale, t.e(x), ce, x as i64, ent_g);
        loss += penalise(cfg.regulariser, reg_scale, t.r(r), cr, r as i64, rel_g);
    }
    Ok(loss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corruption_is_any_entity_but_the_one_it_replaces() {
        let mut rng = Rng::new(7, 0, 0, 0);
        for (n_ent, replaced) in [(2, 0), (2, 1), (14, 0), (14, 6), (14, 13)] {
            let mut seen = vec![0usize; n_ent];
            for _ in 0..20_000 {
                seen[other_entity(&mut rng, n_ent, replaced)] += 1;
            }
            assert_eq!(seen[replaced], 0, "{n_ent} {replaced}");
            let expected = 20_000 / (n_ent - 1);
            for (e, &k) in seen.iter().enumerate().filter(|&(e, _)| e != replaced) {
                assert!(
                    k.abs_diff(expected) < expected / 5,
                    "{n_ent} {replaced}: {e} {k}"
                );
            }
        }
        assert_eq!(other_entity(&mut rng, 1, 0), 0); // no other entity to take
    }
}
