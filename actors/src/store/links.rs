//! Checks of child links at apply time: a link names a job that exists in
//! the same namespace (or is created in the same command), and no link
//! closes a cycle. Deterministic, so every node rejects the same commands.

use std::collections::HashMap;

use protocol::{Job, JobKey};

use super::{keys, txn::Txn, StoreError};

/// Most jobs one check walks through: the jobs reachable through children
/// from a changed job. A graph that large is refused rather than walked.
pub const MAX_LINK_WALK: usize = 10_000;

/// Why a link is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkProblem {
    /// The child job does not exist.
    Missing,
    /// Following children from the child leads back to the job: the path,
    /// child first, ending at the job.
    Cycle(Vec<String>),
    /// More than [`MAX_LINK_WALK`] jobs are reachable from the child.
    TooLarge,
}

/// A refused link: `job`'s `children[index]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLink {
    pub job: JobKey,
    pub index: usize,
    /// The child the link names.
    pub child: String,
    pub problem: LinkProblem,
}

/// Checks the links of `changed`, jobs about to be stored together: they
/// count as existing, with their new definitions, whatever their order.
pub fn check(txn: &Txn, changed: &[&Job]) -> Result<Option<BadLink>, StoreError> {
    let pending: HashMap<JobKey, &Job> = changed.iter().map(|job| (job.key(), *job)).collect();
    let graph = Graph { txn, pending };
    for job in changed {
        let key = job.key();
        for (index, link) in job.children.iter().enumerate() {
            let child = JobKey::new(key.namespace.clone(), link.job.clone());
            let problem = if !graph.exists(&child)? {
                Some(LinkProblem::Missing)
            } else {
                graph.path(&child, &key)?
            };
            if let Some(problem) = problem {
                return Ok(Some(BadLink {
                    job: key,
                    index,
                    child: link.job.clone(),
                    problem,
                }));
            }
        }
    }
    Ok(None)
}

/// The jobs of a namespace whose links name `child`, by id.
pub fn parents_of(txn: &Txn, child: &JobKey) -> Result<Vec<Job>, StoreError> {
    let jobs: Vec<Job> = txn.values_with_prefix(&keys::job_prefix(Some(&child.namespace)))?;
    Ok(jobs
        .into_iter()
        .filter(|job| job.key() != *child && job.children.iter().any(|l| l.job == child.id))
        .collect())
}

/// The job graph as the command would leave it.
struct Graph<'a, 'b> {
    txn: &'a Txn<'b>,
    pending: HashMap<JobKey, &'a Job>,
}

impl Graph<'_, '_> {
    fn exists(&self, key: &JobKey) -> Result<bool, StoreError> {
        Ok(self.pending.contains_key(key) || self.txn.exists(&keys::job(key))?)
    }

    /// The ids of the children of `key` (none if it does not exist).
    fn children(&self, key: &JobKey) -> Result<Vec<String>, StoreError> {
        if let Some(job) = self.pending.get(key) {
            return Ok(job.children.iter().map(|l| l.job.clone()).collect());
        }
        Ok(self
            .txn
            .get::<Job>(&keys::job(key))?
            .map(|job| job.children.into_iter().map(|l| l.job).collect())
            .unwrap_or_default())
    }

    /// Whether `to` is reachable from `from` through children: a cycle
    /// when `to` names `from` as a child. Depth first, each job once.
    fn path(&self, from: &JobKey, to: &JobKey) -> Result<Option<LinkProblem>, StoreError> {
        let namespace = &from.namespace;
        // The job each visited one was reached from (the path back).
        let mut reached_from: HashMap<String, Option<String>> = HashMap::new();
        let mut stack: Vec<(String, Option<String>)> = vec![(from.id.clone(), None)];
        while let Some((id, parent)) = stack.pop() {
            if reached_from.contains_key(&id) {
                continue;
            }
            reached_from.insert(id.clone(), parent);
            if id == to.id {
                let mut path = vec![id];
                while let Some(Some(previous)) = path.last().and_then(|p| reached_from.get(p)) {
                    path.push(previous.clone());
                }
                path.reverse();
                return Ok(Some(LinkProblem::Cycle(path)));
            }
            if reached_from.len() > MAX_LINK_WALK {
                return Ok(Some(LinkProblem::TooLarge));
            }
            for child in self.children(&JobKey::new(namespace.clone(), id.clone()))? {
                if !reached_from.contains_key(&child) {
                    stack.push((child, Some(id.clone())));
                }
            }
        }
        Ok(None)
    }
}
