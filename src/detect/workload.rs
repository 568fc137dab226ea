/*!
Which workload a pod belongs to, from its controller ownerReference alone,
with no extra API calls: an incident is about a workload, not a pod.

- A ReplicaSet named `<deployment>-<pod-template-hash>` belongs to that
  Deployment (the hash is what the Deployment controller appends).
- StatefulSet, DaemonSet, Job and others are the workload themselves.
- A Job named `<cronjob>-<digits>` belongs to that CronJob (the CronJob
  controller names Jobs after the scheduled minute).
- A pod with no owner is its own workload.
*/

use crate::model::{FailureType, Incident, PodRecord, Rollout, Workload};

/// Characters Kubernetes uses for generated suffixes (`rand.SafeEncodeString`):
/// no vowels, no 0/1/3, so they never spell words.
fn is_safe_encoded(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| b"bcdfghjklmnpqrstvwxz2456789".contains(&c))
}

pub fn workload_of(pod: &PodRecord) -> Workload {
    let Some(owner) = &pod.owner else {
        return Workload {
            kind: "Pod".into(),
            name: pod.name.to_string(),
        };
    };
    let (kind, name) = (&*owner.kind, &*owner.name);
    match kind {
        "ReplicaSet" => match name.rsplit_once('-') {
            Some((deploy, _)) if revision_of(pod).is_some() => Workload {
                kind: "Deployment".into(),
                name: deploy.into(),
            },
            _ => Workload {
                kind: "ReplicaSet".into(),
                name: name.into(),
            },
        },
        "Job" => match name.rsplit_once('-') {
            // CronJob-created Jobs end in the scheduled time in minutes.
            Some((cron, stamp))
                if !cron.is_empty()
                    && stamp.len() >= 8
                    && stamp.bytes().all(|c| c.is_ascii_digit()) =>
            {
                Workload {
                    kind: "CronJob".into(),
                    name: cron.into(),
                }
            }
            _ => Workload {
                kind: "Job".into(),
                name: name.into(),
            },
        },
        _ => Workload {
            kind: kind.into(),
            name: name.into(),
        },
    }
}

/// The revision a Deployment's pod belongs to: its ReplicaSet
/// (`web-7d4b9c6f8`). Failures of two revisions (a rollout next to the old
/// ReplicaSet) are two problems. `None` for every other owner.
pub fn revision_of(pod: &PodRecord) -> Option<&str> {
    let owner = pod.owner.as_ref()?;
    if &*owner.kind != "ReplicaSet" {
        return None;
    }
    // pod-template-hash is 1–10 safe-encoded characters.
    let (deploy, hash) = owner.name.rsplit_once('-')?;
    (!deploy.is_empty() && hash.len() <= 10 && is_safe_encoded(hash)).then_some(&*owner.name)
}

/// Where `subject`'s revision stands among the revisions of its workload's
/// pods (`pods`: every pod of that workload, `subject` among them), given the
/// revisions that have an open incident (`failing`). The newest revision is
/// the one whose newest pod was created last: the Deployment controller
/// creates a new ReplicaSet's pods after the old one's.
pub fn rollout_of<'a>(
    subject: &PodRecord,
    pods: impl IntoIterator<Item = &'a PodRecord>,
    failing: &[(&str, FailureType)],
) -> Rollout {
    let Some(mine) = revision_of(subject) else {
        return Rollout::Steady;
    };
    // Newest pod creation per revision.
    let mut newest: Vec<(&str, i64)> = Vec::new();
    for p in pods {
        let Some(rev) = revision_of(p) else { continue };
        let created = p.created.unwrap_or(i64::MIN);
        match newest.iter_mut().find(|(r, _)| *r == rev) {
            Some((_, t)) => *t = (*t).max(created),
            None => newest.push((rev, created)),
        }
    }
    newest.sort_by_key(|r| std::cmp::Reverse(r.1));
    // Created at the same second: which one is newer cannot be told.
    if let [(_, a), (_, b), ..] = newest.as_slice() {
        if a == b {
            return Rollout::Steady;
        }
    }
    match newest.as_slice() {
        [(top, _), rest @ ..] if *top == mine => match rest.first() {
            Some((older, _)) => Rollout::Newest {
                older: older.to_string(),
            },
            None => Rollout::Steady,
        },
        [(top, _), ..] => Rollout::Superseded {
            newer: top.to_string(),
            newer_failing: failing
                .iter()
                .filter(|(r, _)| r == top)
                .map(|(_, k)| *k)
                .min(),
        },
        [] => Rollout::Steady,
    }
}

/// `rollout_of` for an incident: `pods` are candidates (the store, or a
/// scan's list; those of other workloads are skipped) and `open` the open
/// incidents (those of other workloads are skipped).
pub fn rollout_of_incident<'a>(
    incident: &Incident,
    subject: &PodRecord,
    pods: impl IntoIterator<Item = &'a PodRecord>,
    open: impl IntoIterator<Item = &'a Incident>,
) -> Rollout {
    if incident.revision.is_none() {
        return Rollout::Steady;
    }
    let same = |ns: &str, w: &Workload| ns == incident.namespace && *w == incident.workload;
    let failing: Vec<(&str, FailureType)> = open
        .into_iter()
        .filter(|o| same(&o.namespace, &o.workload))
        .filter_map(|o| Some((o.revision.as_deref()?, o.kind())))
        .collect();
    // A Deployment's pods: their ReplicaSet is `<deployment>-<hash>`.
    let of_workload = pods.into_iter().filter(|p| {
        *p.namespace == *incident.namespace
            && incident.workload.kind == "Deployment"
            && revision_of(p)
                .and_then(|rs| rs.rsplit_once('-'))
                .is_some_and(|(d, _)| d == incident.workload.name)
    });
    rollout_of(subject, of_workload, &failing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Owner, Phase};

    fn pod_owned_by(kind: &str, name: &str) -> PodRecord {
        let mut p = PodRecord::bare("ns", "the-pod", Phase::Running);
        p.owner = (!kind.is_empty()).then(|| Owner {
            kind: kind.into(),
            name: name.into(),
        });
        p
    }

    fn w(kind: &str, name: &str) -> Workload {
        workload_of(&pod_owned_by(kind, name))
    }

    #[test]
    fn replicasets_with_a_template_hash_belong_to_their_deployment() {
        assert_eq!(
            w("ReplicaSet", "orders-api-7d4b9c6f8"),
            Workload {
                kind: "Deployment".into(),
                name: "orders-api".into()
            }
        );
        assert_eq!(
            w("ReplicaSet", "web-5b7c9"),
            Workload {
                kind: "Deployment".into(),
                name: "web".into()
            }
        );
        // A hand-made ReplicaSet whose suffix is a word is its own workload.
        assert_eq!(
            w("ReplicaSet", "frontend-canary"),
            Workload {
                kind: "ReplicaSet".into(),
                name: "frontend-canary".into()
            }
        );
        assert_eq!(
            w("ReplicaSet", "single"),
            Workload {
                kind: "ReplicaSet".into(),
                name: "single".into()
            }
        );
    }

    #[test]
    fn cronjob_jobs_belong_to_their_cronjob_and_other_jobs_to_themselves() {
        assert_eq!(
            w("Job", "nightly-backup-29012345"),
            Workload {
                kind: "CronJob".into(),
                name: "nightly-backup".into()
            }
        );
        assert_eq!(
            w("Job", "migrate-v2"),
            Workload {
                kind: "Job".into(),
                name: "migrate-v2".into()
            }
        );
    }

    #[test]
    fn statefulsets_daemonsets_and_bare_pods() {
        assert_eq!(
            w("StatefulSet", "db"),
            Workload {
                kind: "StatefulSet".into(),
                name: "db".into()
            }
        );
        assert_eq!(
            w("DaemonSet", "node-exporter"),
            Workload {
                kind: "DaemonSet".into(),
                name: "node-exporter".into()
            }
        );
        assert_eq!(
            w("", ""),
            Workload {
                kind: "Pod".into(),
                name: "the-pod".into()
            }
        );
    }

    fn rs_pod(rs: &str, name: &str, created: i64) -> PodRecord {
        let mut p = pod_owned_by("ReplicaSet", rs);
        p.name = name.into();
        p.created = Some(created);
        p
    }

    #[test]
    fn a_rollout_gone_wrong_is_newest_for_the_new_revision_and_superseded_for_the_old() {
        let old = rs_pod("web-7c9d8f6b5", "web-7c9d8f6b5-x4k2p", 100);
        let old2 = rs_pod("web-7c9d8f6b5", "web-7c9d8f6b5-q2w3e", 120);
        let new = rs_pod("web-8d5f7c6b9", "web-8d5f7c6b9-b2n8v", 500);
        let pods = [&old, &old2, &new];
        let failing = [
            ("web-7c9d8f6b5", FailureType::OOMKilled),
            ("web-8d5f7c6b9", FailureType::CrashLoopBackOff),
            ("web-8d5f7c6b9", FailureType::ImagePullBackOff),
        ];
        assert_eq!(
            rollout_of(&new, pods, &failing),
            Rollout::Newest {
                older: "web-7c9d8f6b5".into()
            }
        );
        assert_eq!(
            rollout_of(&old, pods, &failing),
            Rollout::Superseded {
                newer: "web-8d5f7c6b9".into(),
                // The most specific of the newer revision's failures.
                newer_failing: Some(
                    FailureType::ImagePullBackOff.min(FailureType::CrashLoopBackOff)
                ),
            }
        );
        // The newer revision is healthy: still superseded, nothing failing there.
        assert_eq!(
            rollout_of(&old, pods, &failing[..1]),
            Rollout::Superseded {
                newer: "web-8d5f7c6b9".into(),
                newer_failing: None,
            }
        );
    }

    #[test]
    fn one_revision_or_no_revisions_is_steady() {
        let a = rs_pod("web-7c9d8f6b5", "web-7c9d8f6b5-x4k2p", 100);
        let b = rs_pod("web-7c9d8f6b5", "web-7c9d8f6b5-q2w3e", 900);
        assert_eq!(rollout_of(&a, [&a, &b], &[]), Rollout::Steady);
        // Two revisions created in the same second: no telling which is newer.
        let c = rs_pod("web-8d5f7c6b9", "web-8d5f7c6b9-b2n8v", 900);
        assert_eq!(rollout_of(&c, [&a, &b, &c], &[]), Rollout::Steady);
        let job = pod_owned_by("Job", "db-migrate-v41");
        assert_eq!(rollout_of(&job, [&job], &[]), Rollout::Steady);
    }
}
